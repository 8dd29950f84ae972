"""Formation cycler files for the demo: what a formation channel writes for one cell.

A plain CSV export (time, voltage, current, temperature, step), the format the cycler readers take
from any vendor's text export: rest, a CC charge at C/10 up to the design's upper voltage, a CV
hold until the current tapers to C/50, rest, a CC discharge at C/10 down to the lower voltage, rest.
The voltage follows a sulfide NCM cell's open-circuit curve plus the IR drop of the current, with
instrument noise. The first charge puts in more than the discharge gives back (the first-cycle
loss, ICE about 0.86). `soft_short` drops the voltage by a few tens of mV for a while during the
CC charge, as a lithium filament does; the readers count that as a soft-short event.
"""

from __future__ import annotations

import io
import math
import random

from lines.models import CellDesign

SAMPLE_S = 30.0  # one row every 30 s: about 2,500 rows for a 20 h formation
C_RATE = 0.1
TAPER_C_RATE = 0.02
REST_S = 600.0


def _ocv(soc: float, low: float, high: float) -> float:
    """Open-circuit voltage of the cell at a state of charge 0..1: a steep knee at empty down to
    the lower voltage, a sloping middle, a rise to the upper voltage at full."""
    soc = min(max(soc, 0.0), 1.0)
    shape = 0.38 + 0.47 * soc - 0.38 * math.exp(-soc / 0.04) + 0.15 * math.exp((soc - 1.0) / 0.05)
    return low + (high - low) * shape


def formation_csv(
    design: CellDesign,
    rng: random.Random,
    *,
    efficiency: float | None = None,
    soft_short: bool = False,
) -> bytes:
    """One cell's formation as a plain CSV file; `efficiency` the first-cycle Qdis/Qch."""
    nominal = design.nominal_capacity_ah
    low, high = design.voltage_min_v, design.voltage_max_v
    ice = efficiency if efficiency is not None else rng.gauss(0.86, 0.008)
    charge_capacity = nominal * rng.uniform(0.98, 1.02)  # to full, before the CV tail
    resistance = 0.012 * 5.0 / nominal * rng.uniform(0.9, 1.1)  # ohm: 12 mOhm for 5 Ah
    current = C_RATE * nominal
    temperature = rng.gauss(45.0, 0.4)  # the formation fixture runs warm
    rows: list[tuple[float, float, float, float, int]] = []
    t = 0.0
    short_at = rng.uniform(0.3, 0.7) * charge_capacity if soft_short else None

    def emit(volts: float, amps: float, step: int, heat: float = 0.0) -> None:
        nonlocal t
        rows.append(
            (
                t,
                volts + rng.gauss(0, 0.0004),
                amps * (1 + rng.gauss(0, 0.0005)) if amps else 0.0,
                temperature + heat + rng.gauss(0, 0.05),
                step,
            )
        )
        t += SAMPLE_S

    # Step 1: rest at the as-built voltage.
    for _ in range(int(REST_S / SAMPLE_S)):
        emit(low + 0.4, 0.0, 1)
    # Step 2: CC charge to the upper voltage.
    charged = 0.0
    while True:
        soc = charged / charge_capacity
        volts = _ocv(soc, low, high) + current * resistance
        if short_at is not None and charged >= short_at:
            # The filament: the voltage sags 20-40 mV for about ten minutes, then recovers.
            depth = rng.uniform(0.02, 0.04)
            for k in range(20):
                sag = depth * math.sin(math.pi * (k + 1) / 21)
                emit(volts - sag, current, 2, 0.5)
                charged += current * SAMPLE_S / 3600
            short_at = None
            continue
        if volts >= high:
            break
        emit(volts, current, 2, 0.5)
        charged += current * SAMPLE_S / 3600
    # Step 3: CV at the upper voltage until the current tapers to C/50.
    tau = rng.uniform(2400.0, 3600.0)  # s
    held = 0.0
    while True:
        amps = current * math.exp(-held / tau)
        if amps < TAPER_C_RATE * nominal:
            break
        emit(high, amps, 3, 0.3)
        charged += amps * SAMPLE_S / 3600
        held += SAMPLE_S
    discharge_capacity = charged * ice  # what comes back out: the first-cycle loss stays in
    # Step 4: rest; the voltage relaxes.
    top = _ocv(0.97, low, high)
    for k in range(int(REST_S / SAMPLE_S)):
        emit(high - (high - top) * (1 - math.exp(-k / 5)), 0.0, 4)
    # Step 5: CC discharge to the lower voltage.
    given = 0.0
    while True:
        soc = 1.0 - given / discharge_capacity
        volts = _ocv(soc, low, high) - current * resistance
        if volts <= low or given >= discharge_capacity * 1.02:
            break
        emit(volts, -current, 5, 0.4)
        given += current * SAMPLE_S / 3600
    # Step 6: rest.
    for k in range(int(REST_S / SAMPLE_S)):
        emit(low + 0.25 * (1 - math.exp(-k / 4)), 0.0, 6)

    out = io.StringIO()
    out.write("Time(s),Voltage(V),Current(A),Temperature(C),Step\n")
    for time_s, volts, amps, temp, step in rows:
        out.write(f"{time_s:.1f},{volts:.5f},{amps:.5f},{temp:.2f},{step}\n")
    return out.getvalue().encode()


# How a formation goes wrong in the demo, as demo_data.UPSETS does for the summaries.
FORMATION_FILE_UPSETS = ("soft_short", "low_ice")


def formation_file(
    design: CellDesign, rng: random.Random, *, upset_rate: float = 0.0
) -> tuple[bytes, str]:
    """A cell's formation file and the upset drawn for it ("" for a sound cell)."""
    upset = rng.choice(FORMATION_FILE_UPSETS) if rng.random() < upset_rate else ""
    efficiency = rng.uniform(0.70, 0.76) if upset == "low_ice" else None
    content = formation_csv(design, rng, efficiency=efficiency, soft_short=upset == "soft_short")
    return content, upset
