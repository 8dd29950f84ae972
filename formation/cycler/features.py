"""Formation features from a :class:`CyclerData`, the same arithmetic for every vendor.

Capacities are counted from current and time (coulomb counting) rather than taken from the
vendors' own capacity columns, because those columns disagree on everything that matters here:
Arbin keeps running charge and discharge totals across steps, Neware and BioLogic reset per step
or half cycle and sign them, Maccor writes an unsigned per-step Amp-hr, Bitrode a signed per-step
Ah, and a plain CSV may have none. Integrating the one normalised current over the one normalised
time axis gives every format the same definition of a half cycle and the same rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .data import CyclerData

# A row is at rest when |I| is below this fraction of the file's largest |I|. Kept small on
# purpose: the CV tail of a charge tapers to a few per cent of the CC current (0.6 % in the Arbin
# sample: 6.8 mA after 1.1 A), and those rows still belong to the charge. Rest readings on the
# sample files are 0 or instrument noise (Bitrode 0.01 A of 30.6 A = 0.03 %; Arbin 0.1 mA of
# 1.1 A = 0.009 %).
REST_FRACTION = 2e-3

# A run of one sign whose charge is below this fraction of the largest run's charge is noise
# (a flicker of rest current across zero, a millisecond pulse), not a half cycle: its rows are
# treated as rest so they neither count as a half cycle nor split the charge around them.
NOISE_FRACTION = 5e-3

# Soft-short rule (see _soft_short_events): a drop of more than 5 mV below the highest voltage
# reached so far in a constant-current charge segment, lasting at least two consecutive samples.
SOFT_SHORT_DROP_V = 5e-3
SOFT_SHORT_MIN_SAMPLES = 2
# Charge rows whose current is within 2 % of the largest current of their step are taken as
# constant current; the rest of a CCCV step (the taper) is constant voltage and is not checked.
CC_TOLERANCE = 0.02


@dataclass(frozen=True)
class HalfCycle:
    """A run of charge (sign +1) or discharge (sign -1) over rows ``start..stop`` inclusive."""

    sign: int
    start: int
    stop: int
    capacity_ah: float  # always positive
    energy_wh: float  # integral of V*|I| dt, always positive for a positive voltage
    complete: bool  # False when the run reaches the last row of the file (cut by the file's end)


def current_state(current_a: np.ndarray) -> np.ndarray:
    """Per row: +1 charging, -1 discharging, 0 rest (|I| <= REST_FRACTION * max |I|)."""
    current = np.asarray(current_a, dtype=np.float64)
    if current.size == 0:
        return np.zeros(0, dtype=np.int8)
    peak = float(np.nanmax(np.abs(current)))
    if not np.isfinite(peak) or peak == 0.0:
        return np.zeros(current.size, dtype=np.int8)
    state = np.sign(current).astype(np.int8)
    state[~(np.abs(current) > REST_FRACTION * peak)] = 0
    return state


def _cumulative_trapezoid(time_s: np.ndarray, values: np.ndarray) -> np.ndarray:
    """C with C[j] - C[i] = trapezoid integral of ``values`` from row i to row j, time in hours.

    Time in hours makes the integral of amperes come out in Ah and of watts in Wh. A half cycle
    is integrated over its own rows only, exactly what np.trapezoid gives over them: the interval
    between the rest row before it and its first row is not counted (when inside that interval
    the current started is unknown; Arbin and Bitrode log a step's first row one interval after
    it started, Neware at its start), nor the one after its last row. The difference from a
    vendor's own capacity column is at most one sample interval of current at each end, plus what
    the vendor's faster internal integration sees between logged rows.
    """
    steps = np.diff(time_s) * (values[1:] + values[:-1]) / 2.0 / 3600.0  # A*s -> Ah, W*s -> Wh
    return np.concatenate(([0.0], np.cumsum(steps)))


def _runs(state: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sign, first row, last row) of each run of one sign; rest rows neither end nor split it."""
    active = np.flatnonzero(state)
    if active.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    signs = state[active]
    cut = np.flatnonzero(np.diff(signs)) + 1
    first = np.r_[0, cut]
    last = np.r_[cut - 1, active.size - 1]
    return signs[first].astype(np.int64), active[first], active[last]


def half_cycle_runs(
    time_s: np.ndarray, current_a: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(sign, first row, last row, capacity Ah) of each half cycle; see half_cycles for the rule."""
    empty = np.zeros(0, dtype=np.int64)
    if time_s.size < 2:
        return empty, empty, empty, np.zeros(0)
    state = current_state(current_a).copy()
    # Each half cycle integrates only its own sign: a flicker of opposite current absorbed into
    # it (NOISE_FRACTION) neither adds to nor subtracts from it.
    charge = _cumulative_trapezoid(time_s, np.clip(current_a, 0.0, None))
    discharge = _cumulative_trapezoid(time_s, np.clip(-current_a, 0.0, None))

    def runs_with_totals() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        signs, first, last = _runs(state)
        totals = np.where(
            signs > 0, charge[last] - charge[first], discharge[last] - discharge[first]
        )
        return signs, first, last, totals

    signs, first, last, totals = runs_with_totals()
    for _ in range(10):  # each pass can only merge runs, so this settles in a pass or two
        if signs.size == 0:
            break
        noise = totals < NOISE_FRACTION * totals.max()
        if not noise.any():
            break
        for start, stop in zip(first[noise], last[noise], strict=True):
            state[start : stop + 1] = 0
        signs, first, last, totals = runs_with_totals()
    return signs, first, last, totals


def half_cycles(data: CyclerData) -> list[HalfCycle]:
    """Split the file into charge and discharge half cycles.

    Rule: a half cycle is a maximal run of rows whose current has one sign; rest rows (see
    REST_FRACTION) inside it neither end nor split it, so a CCCV charge with a pause in the middle,
    or a charge whose CV tail tapers towards zero, stays one charge. Only current of the opposite
    sign ends it, and runs too small to be a half cycle (NOISE_FRACTION) do not count as that.

    Capacity and energy of a half cycle: the trapezoid integral of its own sign of current (and
    of V times that current) over its rows, first to last; see _cumulative_trapezoid.
    """
    time_s, voltage, current = data.time_s, data.voltage_v, data.current_a
    signs, first, last, totals = half_cycle_runs(time_s, current)
    volts = np.nan_to_num(voltage)
    e_charge = _cumulative_trapezoid(time_s, volts * np.clip(current, 0.0, None))
    e_dis = _cumulative_trapezoid(time_s, volts * np.clip(-current, 0.0, None))
    result = []
    for sign, start, stop, total in zip(signs, first, last, totals, strict=True):
        energy = e_charge if sign > 0 else e_dis
        result.append(
            HalfCycle(
                sign=int(sign),
                start=int(start),
                stop=int(stop),
                capacity_ah=float(total),
                energy_wh=float(energy[stop] - energy[start]),
                complete=bool(stop < time_s.size - 1),
            )
        )
    return result


def _first_pair(cycles: list[HalfCycle]) -> tuple[int | None, HalfCycle | None, HalfCycle | None]:
    """Index of the first charge, that charge, and the discharge right after it (or None).

    Anything before the first charge (rest, a partial discharge from the as-built state) is
    skipped. Runs alternate in sign by construction, so the next run is the discharge.
    """
    for index, cycle in enumerate(cycles):
        if cycle.sign > 0:
            following = cycles[index + 1] if index + 1 < len(cycles) else None
            return index, cycle, following
    return None, None, None


def _soft_short_events(data: CyclerData) -> int:
    """Count voltage drops during constant-current charge.

    Under constant-current charge the cell voltage can only rise (or, on a flat plateau, hold); a
    cell that loses voltage while the cycler pushes a constant current into it is leaking that
    charge internally: a soft short (a lithium filament, a cracked separator layer). Rule:

    * constant-current charge rows: charging rows (current_state +1) whose current is within
      CC_TOLERANCE of the largest current of their step; a CCCV step's CV taper is excluded, since
      there the cycler holds voltage and a short shows as rising current, not falling voltage;
    * segments: contiguous runs of such rows within one step (a rest or a step change ends one);
    * an event: the voltage falls more than SOFT_SHORT_DROP_V (5 mV) below the highest voltage
      reached so far in the segment, and stays below it for at least SOFT_SHORT_MIN_SAMPLES
      consecutive samples, so a single-sample glitch is not an event. One continuous stretch
      below that line is one event; a later, separate drop that recovers first is another.
    """
    current, voltage = data.current_a, data.voltage_v
    n = current.size
    if n < SOFT_SHORT_MIN_SAMPLES:
        return 0
    charging = current_state(current) > 0
    step = data.step
    new_block = np.r_[True, (step[1:] != step[:-1]) | (charging[1:] != charging[:-1])]
    block = np.cumsum(new_block) - 1
    block_peak = np.maximum.reduceat(
        np.where(charging, current, -np.inf), np.flatnonzero(new_block)
    )
    cc = charging & (current >= (1.0 - CC_TOLERANCE) * block_peak[block]) & np.isfinite(voltage)
    rows = np.flatnonzero(cc)
    if rows.size < SOFT_SHORT_MIN_SAMPLES:
        return 0
    # Segment id per CC row: a new segment where the block changes or a non-CC row intervenes.
    new_segment = np.r_[True, (np.diff(rows) != 1) | (block[rows][1:] != block[rows][:-1])]
    segment = np.cumsum(new_segment) - 1
    volts = voltage[rows]
    # Running maximum per segment, vectorised: lift each segment above all earlier ones so one
    # global accumulate cannot carry a maximum across a segment boundary, then lower it again.
    lift = segment * (float(np.ptp(volts)) + 1.0)
    running_max = np.maximum.accumulate(volts + lift) - lift
    below = (running_max - volts) > SOFT_SHORT_DROP_V
    if not below.any():
        return 0
    starts = below & ~np.r_[False, below[:-1] & ~new_segment[1:]]
    episode = np.cumsum(starts)[below]
    lengths = np.bincount(episode)[1:]
    return int(np.count_nonzero(lengths >= SOFT_SHORT_MIN_SAMPLES))


def downsample_curve(
    x: np.ndarray, y: np.ndarray, max_points: int = 2000
) -> tuple[np.ndarray, np.ndarray]:
    """Thin a curve for plotting while keeping its shape; deterministic.

    Min/max per bucket: the points are cut, in their original order, into (max_points - 2) // 2
    buckets of equal count; each bucket keeps its lowest and highest y, and the first and last
    points are always kept. Peaks, dips and a soft-short notch survive, unlike with every-n-th
    sampling. Points with a non-finite x or y are dropped. Works for voltage-vs-time and for
    voltage-vs-capacity alike because buckets follow the row order, not the x value.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"x has shape {x.shape}, y has shape {y.shape}")
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    n = x.size
    if n <= max_points:
        return x.copy(), y.copy()
    buckets = max(1, (max_points - 2) // 2)
    bucket = (np.arange(n) * buckets) // n  # equal-count buckets, 0..buckets-1, in row order
    order = np.lexsort((y, bucket))  # by bucket, then by y within a bucket (stable)
    bounds = np.searchsorted(bucket[order], np.arange(buckets + 1))
    lowest = order[bounds[:-1]]
    highest = order[bounds[1:] - 1]
    picked = np.unique(np.concatenate(([0, n - 1], lowest, highest)))
    return x[picked], y[picked]


def voltage_capacity_curve(
    data: CyclerData, max_points: int = 2000
) -> tuple[np.ndarray, np.ndarray]:
    """(capacity_ah, voltage_v) over the first charge and the discharge after it, downsampled.

    Capacity is the net charge passed since the start of the first charge: it rises to Qch1 over
    the charge and falls back by Qdis1 over the discharge, so the curve ends at Qch1 - Qdis1, the
    first-cycle loss. Rest rows between the two are kept (the voltage relaxes at fixed
    capacity). Empty arrays when the file has no charge.
    """
    cycles = half_cycles(data)
    _, first_charge, first_discharge = _first_pair(cycles)
    if first_charge is None:
        return np.zeros(0), np.zeros(0)
    stop = first_discharge.stop if first_discharge is not None else first_charge.stop
    rows = slice(first_charge.start, stop + 1)
    time_s, current = data.time_s[rows], data.current_a[rows]
    steps = np.diff(time_s) * (current[1:] + current[:-1]) / 2.0 / 3600.0
    capacity = np.concatenate(([0.0], np.cumsum(steps)))
    return downsample_curve(capacity, data.voltage_v[rows], max_points)
