"""Every cycle of a file: its features, the protocol steps it ran, and the first cycle's dQ/dV.

A cycle is a charge half cycle and the discharge that follows it (anything before the first
charge, such as a partial discharge from the as-built state, belongs to no cycle). Its
capacities and energies come from the half cycles (coulomb counting, see features.half_cycles);
a half cycle that is not complete gives no capacity, energy or ratio: it is flagged instead.

When a half cycle is complete (see :func:`completeness`):
* it ends inside the file: a half cycle still running on the file's last row was cut by the end
  of the file, unless it had reached the voltage at which the file's other half cycles of its
  sign ended (the cycler stopped at the cut-off and logged nothing more);
* it starts inside the file: one already running on the first row began before the file did;
* it reached the cut-off: a discharge whose last voltage stays more than END_TOLERANCE_V above
  the cut-off stopped early (an alarm, a power cut, an operator), a charge likewise below. The
  cut-off is the one given (the recipe's), else the median end voltage of the file's discharges
  that ended inside the file (charges likewise): a discharge that stopped short stands out
  against the others, which stop at the protocol's cut-off. The median, not the lowest, so that
  one deeper discharge (a capacity check to a lower voltage) does not flag all the others.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .data import CyclerData
from .features import REST_FRACTION, HalfCycle, current_state, half_cycles

# Under load the end-of-discharge voltage of a cycler's cut-off varies by a few mV from cycle to
# cycle (sampling, temperature); a discharge stopped for another reason ends tenths of a volt off.
END_TOLERANCE_V = 0.05

# A row of a charge (or discharge) runs at constant current when its current is within 2 % of the
# largest current of its step; a row below that, within 15 mV of the step's highest voltage (the
# lowest, for a discharge), is at constant voltage: the taper of a CCCV step.
CC_TOLERANCE = 0.02
CV_TOLERANCE_V = 0.015

STEP_KINDS = ("rest", "cc_charge", "cv_charge", "cc_discharge", "cv_discharge")
_REST, _CC_CHARGE, _CV_CHARGE, _CC_DISCHARGE, _CV_DISCHARGE = range(5)

# dQ/dV: the charge passed at constant current is binned by voltage in bins of DQDV_BIN_V (or two
# median voltage steps of the log, when it is coarser), then smoothed with a Savitzky-Golay filter
# over DQDV_WINDOW bins (a quadratic over 55 mV at 5 mV bins: wide enough to remove the binning
# noise, narrow enough to keep the graphite staging peaks ~60 mV apart apart).
DQDV_BIN_V = 0.005
DQDV_WINDOW = 11
DQDV_POLYORDER = 2
# A peak must stand out by 5 % of the highest dQ/dV; at most this many are reported, the most
# prominent, and none within a filter window of the ends of the swept voltage range.
DQDV_PROMINENCE = 0.05
DQDV_PEAKS = 3


def _interval_charge(data: CyclerData) -> np.ndarray:
    """Per row k: the trapezoid charge |I| dt (Ah) of the interval ending at row k (0 at row 0)."""
    t, current = data.time_s, np.abs(data.current_a)
    q = np.zeros(t.size)
    q[1:] = np.diff(t) * (current[1:] + current[:-1]) / 2.0 / 3600.0
    return q


def completeness(
    data: CyclerData,
    cycles: list[HalfCycle],
    *,
    discharge_cutoff_v: float | None = None,
    charge_cutoff_v: float | None = None,
) -> list[HalfCycle]:
    """The half cycles with ``complete`` set by the rules of this module's docstring."""
    if not cycles:
        return cycles
    last_row = data.rows - 1
    volts = data.voltage_v
    state = current_state(data.current_a)
    ends = {c.start: float(volts[c.stop]) for c in cycles}

    first_charge = next((c.start for c in cycles if c.sign > 0), last_row + 1)

    def reference(sign: int, given: float | None) -> float | None:
        if given is not None:
            return given
        # A partial discharge before the first charge (from the as-built state) has no cut-off.
        inside = [
            ends[c.start]
            for c in cycles
            if c.sign == sign and c.stop < last_row and c.start >= first_charge
        ]
        return float(np.median(inside)) if inside else None

    cutoffs = {-1: reference(-1, discharge_cutoff_v), 1: reference(1, charge_cutoff_v)}
    result = []
    for c in cycles:
        cutoff = cutoffs[c.sign]
        end = ends[c.start]
        reached = cutoff is not None and (
            end <= cutoff + END_TOLERANCE_V if c.sign < 0 else end >= cutoff - END_TOLERANCE_V
        )
        began_inside = not (c.start == 0 and state[0] == c.sign)
        if c.stop >= last_row:
            complete = reached  # the file ended on it: complete only if at the cut-off
        else:
            complete = cutoff is None or reached
        result.append(replace(c, complete=bool(complete and began_inside)))
    return result


@dataclass(frozen=True)
class ProtocolStep:
    """A stretch of rows the cycler ran one way: at rest, constant current or constant voltage."""

    kind: str  # one of STEP_KINDS
    start: int
    stop: int  # inclusive
    duration_s: float
    capacity_ah: float  # charge passed in the step's intervals, always positive
    mean_current_a: float
    voltage_start_v: float
    voltage_end_v: float


def step_labels(data: CyclerData) -> np.ndarray:
    """Per row, an index into STEP_KINDS, from the current and voltage alone.

    Rest: |I| below REST_FRACTION of the file's largest. A charge or discharge row is CV when
    its current is below (1 - CC_TOLERANCE) of the largest in its block (its step and direction)
    and its voltage within CV_TOLERANCE_V of the block's extreme (the held voltage); else CC.
    """
    n = data.rows
    labels = np.zeros(n, dtype=np.int8)
    if n == 0:
        return labels
    state = current_state(data.current_a)
    current = np.abs(data.current_a)
    volts = np.nan_to_num(data.voltage_v)
    new_block = np.r_[True, (data.step[1:] != data.step[:-1]) | (state[1:] != state[:-1])]
    starts = np.flatnonzero(new_block)
    block = np.cumsum(new_block) - 1
    peak = np.maximum.reduceat(current, starts)[block]
    high = np.maximum.reduceat(volts, starts)[block]
    low = np.minimum.reduceat(volts, starts)[block]
    tapering = current < (1.0 - CC_TOLERANCE) * peak
    charge, discharge = state > 0, state < 0
    held_high = np.abs(volts - high) <= CV_TOLERANCE_V
    held_low = np.abs(volts - low) <= CV_TOLERANCE_V
    labels[charge] = _CC_CHARGE
    labels[charge & tapering & held_high] = _CV_CHARGE
    labels[discharge] = _CC_DISCHARGE
    labels[discharge & tapering & held_low] = _CV_DISCHARGE
    return labels


def protocol_steps(data: CyclerData, labels: np.ndarray | None = None) -> list[ProtocolStep]:
    """The runs of one step kind, in order (see step_labels for the rule)."""
    if data.rows == 0:
        return []
    labels = step_labels(data) if labels is None else labels
    q = _interval_charge(data)
    cut = np.flatnonzero(np.diff(labels)) + 1
    firsts, lasts = np.r_[0, cut], np.r_[cut - 1, data.rows - 1]
    steps = []
    for a, b in zip(firsts, lasts, strict=True):
        a, b = int(a), int(b)
        steps.append(
            ProtocolStep(
                kind=STEP_KINDS[labels[a]],
                start=a,
                stop=b,
                duration_s=float(data.time_s[b] - data.time_s[a]),
                capacity_ah=float(q[a + 1 : b + 1].sum()),
                mean_current_a=float(np.mean(data.current_a[a : b + 1])),
                voltage_start_v=float(data.voltage_v[a]),
                voltage_end_v=float(data.voltage_v[b]),
            )
        )
    return steps


@dataclass(frozen=True)
class Cycle:
    """One charge and the discharge after it. Capacities, energies and ratios are None where a
    half cycle is missing or not complete: never a number from a cut-short half cycle."""

    number: int  # 1, 2, ...
    charge: HalfCycle | None
    discharge: HalfCycle | None
    charge_capacity_ah: float | None
    discharge_capacity_ah: float | None
    charge_energy_wh: float | None
    discharge_energy_wh: float | None
    coulombic_efficiency: float | None
    energy_efficiency: float | None
    average_charge_voltage_v: float | None
    average_discharge_voltage_v: float | None
    capacity_retention: float | None  # discharge capacity over the first cycle's
    cc_charge_capacity_ah: float | None
    cv_charge_capacity_ah: float | None

    @property
    def complete(self) -> bool:
        return bool(self.charge and self.charge.complete and self.discharge
                    and self.discharge.complete)  # fmt: skip


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b is not None and b > 0 else None


def cycle_table(
    data: CyclerData,
    halves: list[HalfCycle] | None = None,
    labels: np.ndarray | None = None,
    **cutoffs: float | None,
) -> list[Cycle]:
    """The file's cycles in order, from its first charge."""
    if halves is None:
        halves = completeness(data, half_cycles(data), **cutoffs)
    labels = step_labels(data) if labels is None else labels
    q = _interval_charge(data)
    first = next((i for i, h in enumerate(halves) if h.sign > 0), None)
    if first is None:
        return []
    rows: list[Cycle] = []
    first_discharge: float | None = None
    for number, index in enumerate(range(first, len(halves), 2), start=1):
        charge = halves[index]
        discharge = halves[index + 1] if index + 1 < len(halves) else None
        ok_c = charge.complete
        ok_d = discharge is not None and discharge.complete
        q_c = charge.capacity_ah if ok_c else None
        q_d = discharge.capacity_ah if ok_d and discharge else None
        e_c = charge.energy_wh if ok_c else None
        e_d = discharge.energy_wh if ok_d and discharge else None
        if number == 1:
            first_discharge = q_d
        cc = cv = None
        if ok_c:
            span = slice(charge.start + 1, charge.stop + 1)
            cc = float(q[span][labels[span] == _CC_CHARGE].sum())
            cv = float(q[span][labels[span] == _CV_CHARGE].sum())
        rows.append(
            Cycle(
                number=number,
                charge=charge,
                discharge=discharge,
                charge_capacity_ah=q_c,
                discharge_capacity_ah=q_d,
                charge_energy_wh=e_c,
                discharge_energy_wh=e_d,
                coulombic_efficiency=_ratio(q_d, q_c),
                energy_efficiency=_ratio(e_d, e_c),
                average_charge_voltage_v=_ratio(e_c, q_c),
                average_discharge_voltage_v=_ratio(e_d, q_d),
                capacity_retention=_ratio(q_d, first_discharge),
                cc_charge_capacity_ah=cc,
                cv_charge_capacity_ah=cv,
            )
        )
    return rows


@dataclass(frozen=True)
class DqDv:
    """dQ/dV of one half cycle's constant-current rows: bin centres (V), smoothed dQ/dV (Ah/V,
    positive for charge and discharge alike) and the peaks (voltage, height), by voltage."""

    voltage_v: np.ndarray
    dqdv_ah_per_v: np.ndarray
    peaks: list[tuple[float, float]]


def _charge_below(x: np.ndarray, lo: np.ndarray, hi: np.ndarray, q: np.ndarray) -> np.ndarray:
    """F(x): the charge passed below voltage x, each interval's charge q spread evenly over the
    voltages it swept, [lo, hi] (all of it at lo when the voltage did not move).

    F is piecewise linear: with slopes s = q / (hi - lo), F(x) = sum over lo <= x of s (x - lo)
    minus sum over hi <= x of s (x - hi), evaluated with sorted breakpoints and running sums, so
    the bins' dQ/dV is exact for a piecewise-linear voltage, whatever the bin width and the
    sampling (no aliasing between samples per bin and bins)."""
    flat = hi <= lo
    point_v, point_q = lo[flat], q[flat]
    lo, hi, q = lo[~flat], hi[~flat], q[~flat]
    slope = q / (hi - lo)

    def ramp(breaks: np.ndarray) -> np.ndarray:
        order = np.argsort(breaks)
        b, s = breaks[order], slope[order]
        cum_s = np.r_[0.0, np.cumsum(s)]
        cum_sb = np.r_[0.0, np.cumsum(s * b)]
        k = np.searchsorted(b, x, side="right")
        return x * cum_s[k] - cum_sb[k]

    order = np.argsort(point_v)
    points = np.r_[0.0, np.cumsum(point_q[order])][np.searchsorted(point_v[order], x, "right")]
    return ramp(lo) - ramp(hi) + points


def dqdv(data: CyclerData, half: HalfCycle, labels: np.ndarray | None = None) -> DqDv | None:
    """dQ/dV over the constant-current part of a half cycle, or None when it has too few rows.

    Each interval between two CC rows of the half cycle spreads its charge (trapezoid |I| dt)
    evenly over the voltages it swept; the charge in each voltage bin over the bin width is
    dQ/dV. Binning by voltage, not differentiating row by row, keeps a noisy or non-monotonic
    voltage from giving infinite slopes. CV rows are left out: there all the charge goes in at
    one voltage.
    """
    from scipy.signal import find_peaks, savgol_filter

    labels = step_labels(data) if labels is None else labels
    cc_kind = _CC_CHARGE if half.sign > 0 else _CC_DISCHARGE
    rows = np.arange(half.start + 1, half.stop + 1)
    rows = rows[(labels[rows] == cc_kind) & (labels[rows - 1] == cc_kind)]
    if rows.size < 2 * DQDV_WINDOW:
        return None
    q = _interval_charge(data)[rows]
    v0, v1 = data.voltage_v[rows - 1], data.voltage_v[rows]
    steps = np.abs(v1 - v0)
    moving = steps[steps > 0]
    width = max(DQDV_BIN_V, 2.0 * float(np.median(moving))) if moving.size else DQDV_BIN_V
    low = np.floor(min(v0.min(), v1.min()) / width) * width
    count = int(np.ceil((max(v0.max(), v1.max()) - low) / width + 1e-9)) or 1
    edges = low + np.arange(count + 1) * width
    binned = np.diff(_charge_below(edges, np.minimum(v0, v1), np.maximum(v0, v1), q)) / width
    centres = edges[:-1] + width / 2.0
    if binned.size < DQDV_WINDOW:
        return None
    smooth = savgol_filter(binned, DQDV_WINDOW, DQDV_POLYORDER)
    top = float(smooth.max())
    peaks: list[tuple[float, float]] = []
    if top > 0:
        found, props = find_peaks(smooth, prominence=DQDV_PROMINENCE * top)
        # Within a window of either end the filter rings on the edge of the swept range (the
        # partly filled end bins, the CC-CV corner), which is the protocol's, not the cell's.
        edge = DQDV_WINDOW
        inside = (found >= edge) & (found < smooth.size - edge)
        found, props = found[inside], {"prominences": props["prominences"][inside]}
        best = found[np.argsort(props["prominences"])[::-1][:DQDV_PEAKS]]
        peaks = [(float(centres[k]), float(smooth[k])) for k in np.sort(best)]
    return DqDv(centres, smooth, peaks)


__all__ = [
    "END_TOLERANCE_V",
    "REST_FRACTION",
    "STEP_KINDS",
    "Cycle",
    "DqDv",
    "ProtocolStep",
    "completeness",
    "cycle_table",
    "dqdv",
    "protocol_steps",
    "step_labels",
]
