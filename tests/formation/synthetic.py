"""Synthetic formation protocols whose capacities and energies are known in closed form.

Every segment is either constant current with a linear voltage, or constant voltage with a
linearly tapering current, so V*I is linear in time within a segment and the trapezoid rule is
exact. With ``shared_boundaries`` the first row of a segment repeats the time of the last row of
the one before (as Neware and Maccor log a step's first point), so the integrals are exact to
rounding; without it the rows sit on one uniform grid, as Arbin and Bitrode log, and a half cycle
misses at most one sample interval at its start.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

DT = 10.0  # s between samples

# (kind, duration s, current at start A, current at end A, voltage at start V, voltage at end V)
Segment = tuple[str, float, float, float, float, float]

FORMATION: list[Segment] = [
    ("rest", 600, 0.0, 0.0, 3.00, 3.00),
    ("partial discharge", 360, -0.1, -0.1, 3.00, 2.90),  # from the as-built state: skipped
    ("rest", 300, 0.0, 0.0, 2.95, 2.95),
    ("cc charge", 7200, 0.5, 0.5, 3.00, 4.20),  # 1.0 Ah
    ("cv taper", 1800, 0.5, 0.05, 4.20, 4.20),  # (0.5 + 0.05) / 2 * 0.5 h = 0.1375 Ah
    ("rest", 600, 0.0, 0.0, 4.20, 4.10),
    ("cc discharge", 7560, -0.5, -0.5, 4.10, 3.00),  # 1.05 Ah, mean 3.55 V -> 3.7275 Wh
    ("rest", 600, 0.0, 0.0, 3.00, 3.20),
    ("cc charge", 7200, 0.5, 0.5, 3.20, 4.20),  # 1.0 Ah
    ("cv taper", 1800, 0.5, 0.05, 4.20, 4.20),  # 0.1375 Ah
    ("rest", 600, 0.0, 0.0, 4.20, 4.10),
    ("cc discharge", 8100, -0.5, -0.5, 4.10, 3.00),  # 1.125 Ah
    ("rest", 300, 0.0, 0.0, 3.00, 3.10),
]
Q_CHARGE_1 = 1.0 + 0.1375
Q_DISCHARGE_1 = 1.05
ENERGY_DISCHARGE_1 = 0.5 * (4.10 + 3.00) / 2 * 7560 / 3600
Q_CHARGE_2 = 1.0 + 0.1375
Q_DISCHARGE_2 = 1.125


@dataclass
class Curve:
    time_s: np.ndarray
    voltage_v: np.ndarray
    current_a: np.ndarray
    step: np.ndarray
    temperature_c: np.ndarray = field(default_factory=lambda: np.zeros(0))


def build(segments: list[Segment], *, shared_boundaries: bool = True) -> Curve:
    times, volts, amps, steps = [], [], [], []
    start = 0.0
    for number, (_, duration, i0, i1, v0, v1) in enumerate(segments, start=1):
        samples = int(round(duration / DT))
        if shared_boundaries:
            offsets = np.linspace(0.0, duration, samples + 1)  # both ends, start shared
        else:
            offsets = np.linspace(DT, duration, samples)  # the grid continues from the last row
            if number == 1:
                offsets = np.linspace(0.0, duration, samples + 1)
        fraction = offsets / duration
        times.append(start + offsets)
        amps.append(i0 + (i1 - i0) * fraction)
        volts.append(v0 + (v1 - v0) * fraction)
        steps.append(np.full(offsets.size, number))
        start += duration
    time_s = np.concatenate(times)
    # A mild, known temperature swing: peaks at 31.5 degC at the middle of the file.
    temperature = 25.0 + 6.5 * np.sin(np.pi * time_s / time_s[-1])
    return Curve(time_s, np.concatenate(volts), np.concatenate(amps), np.concatenate(steps),
                 temperature)  # fmt: skip


def write_csv(curve: Curve, path: Path, *, with_temperature: bool = True) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        header = ["Time(s)", "Step", "Voltage(V)", "Current(A)"]
        if with_temperature:
            header.append("Temperature(C)")
        writer.writerow(header)
        for k in range(curve.time_s.size):
            row = [
                repr(float(curve.time_s[k])),
                int(curve.step[k]),
                repr(float(curve.voltage_v[k])),
                repr(float(curve.current_a[k])),
            ]
            if with_temperature:
                row.append(repr(float(curve.temperature_c[k])))
            writer.writerow(row)
    return path
