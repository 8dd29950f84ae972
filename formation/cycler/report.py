"""A cycler file's formation measurements and curves, computed once from one analysis.

Measurements are scalars a recipe can judge: the first cycle's (the formation cycle), summaries
over all cycles (``cycles``, ``capacity_retention_last``...) and flags. Per-cycle values are not
measurements named by cycle (a recipe cannot sensibly set a limit on cycle 17 of a file of any
length): they are curves over the cycle number (``discharge_capacity_per_cycle``...).

An incomplete half cycle (see cycles.completeness) never gives a capacity: for the first cycle
``first_charge_complete`` / ``first_discharge_complete`` are 0 and the capacities, energies and
ratios that would come from it are left out, so a recipe that requires
``first_discharge_capacity_ah`` fails the cell as "missing" rather than judging a partial one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .cycles import (
    Cycle,
    DqDv,
    ProtocolStep,
    completeness,
    cycle_table,
    dqdv,
    protocol_steps,
    step_labels,
)
from .data import CyclerData
from .features import HalfCycle, _soft_short_events, downsample_curve, half_cycles

CURVE_POINTS = 2000  # voltage and current against time: enough for a plot, a few kB each
CYCLE_CURVE_POINTS = 500  # each cycle's voltage against capacity
MAX_CYCLE_CURVES = 10  # cycles drawn as V-Q curves: all up to 10, else 10 spread over the file


@dataclass(frozen=True)
class Analysis:
    data: CyclerData
    halves: list[HalfCycle]
    labels: np.ndarray
    steps: list[ProtocolStep]
    cycles: list[Cycle]
    dqdv_charge: DqDv | None
    dqdv_discharge: DqDv | None


def analyse(
    data: CyclerData,
    *,
    discharge_cutoff_v: float | None = None,
    charge_cutoff_v: float | None = None,
) -> Analysis:
    """Half cycles, their completeness, protocol steps, cycles and the first cycle's dQ/dV.

    The cut-offs, when given (a recipe's), decide whether a half cycle reached its end; without
    them the file's own half cycles set the reference (see cycles.completeness).
    """
    halves = completeness(
        data,
        half_cycles(data),
        discharge_cutoff_v=discharge_cutoff_v,
        charge_cutoff_v=charge_cutoff_v,
    )
    labels = step_labels(data)
    cycles = cycle_table(data, halves, labels)
    first = cycles[0] if cycles else None
    dq_c = dq_d = None
    if first is not None and first.charge is not None and first.charge.complete:
        dq_c = dqdv(data, first.charge, labels)
    if first is not None and first.discharge is not None and first.discharge.complete:
        dq_d = dqdv(data, first.discharge, labels)
    return Analysis(data, halves, labels, protocol_steps(data, labels), cycles, dq_c, dq_d)


def formation_features(
    data: CyclerData | Analysis,
    *,
    discharge_cutoff_v: float | None = None,
    charge_cutoff_v: float | None = None,
) -> dict[str, float]:
    """The formation measurements of one file; keys that cannot be computed are left out.

    First cycle (the first charge after any leading rest or partial discharge, and the discharge
    after it), each only from a complete half cycle: first_charge_capacity_ah,
    first_discharge_capacity_ah, initial_coulombic_efficiency (Qdis/Qch), charge_energy_wh and
    discharge_energy_wh (trapezoid of V*|I| dt), average_charge_voltage_v and
    average_discharge_voltage_v (energy / capacity), initial_energy_efficiency (Edis/Ech),
    first_charge_cc_capacity_ah and first_charge_cv_capacity_ah (the charge's constant-current
    and constant-voltage parts), dQ/dV peaks of its CC parts (dqdv_charge_peak_1_v and
    dqdv_charge_peak_1_ah_per_v..., by voltage). Flags: first_charge_complete and
    first_discharge_complete (1 or 0), incomplete_half_cycles (a count).
    All cycles: cycles (complete charge-discharge pairs), later_coulombic_efficiency (mean CE of
    the complete cycles after the first), last_discharge_capacity_ah and capacity_retention_last
    (the last complete discharge, over the first cycle's), protocol_steps (rest, CC and CV runs).
    File: rows, min/max voltage, max temperature, max_gap_intervals (largest time step over the
    median, zero-length steps left out), soft_short_events (see features._soft_short_events).
    """
    analysis = (
        data
        if isinstance(data, Analysis)
        else analyse(data, discharge_cutoff_v=discharge_cutoff_v, charge_cutoff_v=charge_cutoff_v)
    )
    data = analysis.data
    features: dict[str, float] = {"rows": float(data.rows)}
    if data.rows == 0:
        return features
    cycles = analysis.cycles
    if cycles:
        first = cycles[0]
        features["first_charge_complete"] = float(bool(first.charge and first.charge.complete))
        features["first_discharge_complete"] = float(
            bool(first.discharge and first.discharge.complete)
        )
        for key, value in (
            ("first_charge_capacity_ah", first.charge_capacity_ah),
            ("first_discharge_capacity_ah", first.discharge_capacity_ah),
            ("initial_coulombic_efficiency", first.coulombic_efficiency),
            ("charge_energy_wh", first.charge_energy_wh),
            ("discharge_energy_wh", first.discharge_energy_wh),
            ("average_charge_voltage_v", first.average_charge_voltage_v),
            ("average_discharge_voltage_v", first.average_discharge_voltage_v),
            ("initial_energy_efficiency", first.energy_efficiency),
            ("first_charge_cc_capacity_ah", first.cc_charge_capacity_ah),
            ("first_charge_cv_capacity_ah", first.cv_charge_capacity_ah),
        ):
            if value is not None:
                features[key] = float(value)
        complete = [c for c in cycles if c.complete]
        features["cycles"] = float(len(complete))
        later = [c.coulombic_efficiency for c in complete if c.number > 1]
        later = [ce for ce in later if ce is not None]
        if later:
            features["later_coulombic_efficiency"] = float(np.mean(later))
        last = next(
            (c for c in reversed(cycles) if c.number > 1 and c.discharge_capacity_ah is not None),
            None,
        )
        if last is not None:
            features["last_discharge_capacity_ah"] = float(last.discharge_capacity_ah or 0.0)
            if last.capacity_retention is not None:
                features["capacity_retention_last"] = float(last.capacity_retention)
        for side, curve in (
            ("charge", analysis.dqdv_charge),
            ("discharge", analysis.dqdv_discharge),
        ):
            if curve is None:
                continue
            for k, (volts, height) in enumerate(curve.peaks, start=1):
                features[f"dqdv_{side}_peak_{k}_v"] = volts
                features[f"dqdv_{side}_peak_{k}_ah_per_v"] = height
    features["incomplete_half_cycles"] = float(
        sum(1 for h in analysis.halves if not h.complete and _in_cycles(h, cycles))
    )
    features["protocol_steps"] = float(len(analysis.steps))

    if data.temperature_c is not None and np.isfinite(data.temperature_c).any():
        features["max_temperature_c"] = float(np.nanmax(data.temperature_c))
    if np.isfinite(data.voltage_v).any():
        features["min_voltage_v"] = float(np.nanmin(data.voltage_v))
        features["max_voltage_v"] = float(np.nanmax(data.voltage_v))
    steps = np.diff(data.time_s)
    steps = steps[steps > 0]
    if steps.size:
        features["max_gap_intervals"] = float(steps.max() / np.median(steps))
    features["soft_short_events"] = float(_soft_short_events(data))
    return features


def _in_cycles(half: HalfCycle, cycles: list[Cycle]) -> bool:
    """Whether a half cycle belongs to a cycle (not a partial discharge before the first charge)."""
    return bool(cycles) and cycles[0].charge is not None and half.start >= cycles[0].charge.start


@dataclass(frozen=True)
class CurveData:
    """One curve as the step result stores it (batches Curve: name, unit, x_name, x_unit)."""

    name: str
    unit: str
    x_name: str
    x_unit: str
    x: np.ndarray
    y: np.ndarray


def cycle_voltage_capacity(
    data: CyclerData, cycle: Cycle, max_points: int = CYCLE_CURVE_POINTS
) -> tuple[np.ndarray, np.ndarray]:
    """(net charge since the cycle's charge began, Ah; voltage) over the charge and discharge.

    The capacity rises to Qch over the charge and falls back by Qdis over the discharge, so the
    curve is a loop that ends at Qch - Qdis, the cycle's loss; the rest between is kept (the
    voltage relaxes at a fixed capacity).
    """
    if cycle.charge is None:
        return np.zeros(0), np.zeros(0)
    stop = cycle.discharge.stop if cycle.discharge is not None else cycle.charge.stop
    rows = slice(cycle.charge.start, stop + 1)
    time_s, current = data.time_s[rows], data.current_a[rows]
    steps = np.diff(time_s) * (current[1:] + current[:-1]) / 2.0 / 3600.0
    capacity = np.concatenate(([0.0], np.cumsum(steps)))
    return downsample_curve(capacity, data.voltage_v[rows], max_points)


def curve_cycles(count: int) -> list[int]:
    """Which cycles (1-based) get a V-Q curve: all up to MAX_CYCLE_CURVES, else that many spread
    evenly from the first to the last, so fade over a long file still shows."""
    if count <= MAX_CYCLE_CURVES:
        return list(range(1, count + 1))
    return sorted({int(round(x)) for x in np.linspace(1, count, MAX_CYCLE_CURVES)})


PER_CYCLE = (
    # (curve name, Cycle attribute, unit)
    ("charge_capacity_per_cycle", "charge_capacity_ah", "Ah"),
    ("discharge_capacity_per_cycle", "discharge_capacity_ah", "Ah"),
    ("charge_energy_per_cycle", "charge_energy_wh", "Wh"),
    ("discharge_energy_per_cycle", "discharge_energy_wh", "Wh"),
    ("coulombic_efficiency_per_cycle", "coulombic_efficiency", ""),
    ("energy_efficiency_per_cycle", "energy_efficiency", ""),
    ("average_charge_voltage_per_cycle", "average_charge_voltage_v", "V"),
    ("average_discharge_voltage_per_cycle", "average_discharge_voltage_v", "V"),
    ("capacity_retention_per_cycle", "capacity_retention", ""),
)


def formation_curves(analysis: Analysis) -> list[CurveData]:
    """The curves an engineer reads from a formation file.

    * ``voltage`` and ``current`` against time (s), thinned to CURVE_POINTS keeping extremes;
    * ``voltage_vs_capacity``: the first cycle's V-Q loop; ``voltage_vs_capacity_cycle_<n>`` for
      the other cycles of curve_cycles: one curve per cycle rather than one curve of all cycles,
      because a single x-y line through several loops would draw a false segment from the end of
      each loop back to the start of the next (and a curve row cannot carry a gap);
    * ``dqdv_first_charge`` / ``dqdv_first_discharge``: smoothed dQ/dV (Ah/V) against voltage;
    * per-cycle values against the cycle number (PER_CYCLE), when the file has two cycles or
      more; a cycle whose value is None (an incomplete half cycle) has no point.
    """
    data = analysis.data
    curves: list[CurveData] = []
    if data.rows == 0:
        return curves
    t, v = downsample_curve(data.time_s, data.voltage_v, CURVE_POINTS)
    curves.append(CurveData("voltage", "V", "t_s", "s", t, v))
    t, i = downsample_curve(data.time_s, data.current_a, CURVE_POINTS)
    curves.append(CurveData("current", "A", "t_s", "s", t, i))
    cycles = analysis.cycles
    for number in curve_cycles(len(cycles)):
        q, vq = cycle_voltage_capacity(data, cycles[number - 1])
        if q.size:
            name = "voltage_vs_capacity" if number == 1 else f"voltage_vs_capacity_cycle_{number}"
            curves.append(CurveData(name, "V", "capacity_ah", "Ah", q, vq))
    for name, curve in (
        ("dqdv_first_charge", analysis.dqdv_charge),
        ("dqdv_first_discharge", analysis.dqdv_discharge),
    ):
        if curve is not None:
            curves.append(CurveData(name, "Ah/V", "voltage_v", "V", curve.voltage_v,
                                    curve.dqdv_ah_per_v))  # fmt: skip
    if len(cycles) >= 2:
        for name, attribute, unit in PER_CYCLE:
            points = [(c.number, getattr(c, attribute)) for c in cycles]
            points = [(n, value) for n, value in points if value is not None]
            if points:
                x = np.array([n for n, _ in points], dtype=np.float64)
                y = np.array([value for _, value in points], dtype=np.float64)
                curves.append(CurveData(name, unit, "cycle", "", x, y))
    return curves
