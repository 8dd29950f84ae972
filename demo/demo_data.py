"""Plausible station readings for the demo seed and the line simulator (one place for both).

Values sit around the [default] engineering figures of DOMAIN.md; `upset` produces the typical
ways a cell goes wrong at each step.
"""

from __future__ import annotations

import math
import random
from typing import Any

from lines.models import CellDesign


def nominal_stacking_readings(design: CellDesign) -> dict[str, float]:
    """The centre of a design's stacking readings, in spec and the same every time: for load
    tests and the benchmark, where a chance out-of-spec value would change what is measured."""
    return {
        "layer_count": float(design.layer_count),
        "max_offset_x_mm": 0.08,
        "max_offset_y_mm": 0.08,
        "rotation_deg": 0.05,
        "stack_height_mm": round(design.thickness_mm * 1.18, 3),
        "stack_mass_g": round(design.target_mass_g * 0.97, 2),
        "insulation_resistance_mohm": 1000.0,
    }


def stacking_readings(design: CellDesign, rng: random.Random, *, upset: str = "") -> dict[str, Any]:
    nominal = nominal_stacking_readings(design)
    readings = {
        "layer_count": nominal["layer_count"],
        "max_offset_x_mm": round(abs(rng.gauss(nominal["max_offset_x_mm"], 0.05)), 3),
        "max_offset_y_mm": round(abs(rng.gauss(nominal["max_offset_y_mm"], 0.05)), 3),
        "rotation_deg": round(abs(rng.gauss(nominal["rotation_deg"], 0.03)), 3),
        "stack_height_mm": round(nominal["stack_height_mm"] + rng.gauss(0, 0.03), 3),
        "stack_mass_g": round(nominal["stack_mass_g"] + rng.gauss(0, 0.3), 2),
        "insulation_resistance_mohm": round(rng.uniform(300, 2000), 1),
    }
    defects = []
    if upset == "misalignment":
        readings["max_offset_x_mm"] = round(rng.uniform(0.35, 0.6), 3)
        defects.append("misalignment")
    elif upset == "insulation":
        readings["insulation_resistance_mohm"] = round(rng.uniform(5, 80), 1)
        defects.append("insulation_fail")
    return {"measurements": readings, "defects": defects}


def pressing_curves(peak_mpa: float, dwell_s: float, temperature_c: float) -> dict[str, Any]:
    """Pressure and temperature vs time at 10 Hz: ramp, dwell at peak, release."""
    ramp_s, release_s, hz = 30.0, 20.0, 10
    total = ramp_s + dwell_s + release_s
    t = [i / hz for i in range(int(total * hz) + 1)]
    pressure, temperature = [], []
    for ti in t:
        if ti < ramp_s:
            p = peak_mpa * ti / ramp_s
        elif ti < ramp_s + dwell_s:
            p = peak_mpa * (1 - 0.002 * math.sin(ti))
        else:
            p = max(0.0, peak_mpa * (1 - (ti - ramp_s - dwell_s) / release_s))
        pressure.append(round(p, 2))
        temperature.append(round(25 + (temperature_c - 25) * min(1.0, ti / ramp_s), 2))
    return {
        "pressure": {"t_s": t, "values": pressure, "unit": "MPa"},
        "temperature": {"t_s": t, "values": temperature, "unit": "degC"},
    }


def pressing_readings(
    design: CellDesign, rng: random.Random, *, upset: str = "", with_curves: bool = True
) -> dict[str, Any]:
    peak = round(rng.gauss(500, 8), 1)
    dwell = round(rng.uniform(290, 320), 1)
    temperature = round(rng.gauss(60, 1.5), 1)
    before = design.thickness_mm * 1180 + rng.gauss(0, 20)
    readings = {
        "peak_pressure_mpa": peak,
        "dwell_s": dwell,
        "temperature_c": temperature,
        "thickness_before_um": round(before, 1),
        "thickness_after_um": round(design.thickness_mm * 1000 + rng.gauss(0, 15), 1),
        "relative_density_pct": round(min(99.5, rng.gauss(94, 1.2)), 2),
    }
    defects = []
    if upset == "short":
        defects.append("short")
    elif upset == "low_density":
        readings["relative_density_pct"] = round(rng.uniform(84, 89), 2)
    result: dict[str, Any] = {"measurements": readings, "defects": defects}
    if with_curves:
        result["curves"] = pressing_curves(peak, dwell, temperature)
    return result


def formation_readings(
    design: CellDesign, rng: random.Random, *, upset: str = ""
) -> dict[str, Any]:
    charge = design.nominal_capacity_ah * rng.uniform(1.02, 1.08)
    efficiency = rng.gauss(0.86, 0.008)
    if upset == "low_ice":
        efficiency = rng.uniform(0.70, 0.76)
    discharge = charge * efficiency
    average_v = design.nominal_voltage_v + rng.gauss(0, 0.01)
    readings = {
        "first_charge_capacity_ah": round(charge, 4),
        "first_discharge_capacity_ah": round(discharge, 4),
        "initial_coulombic_efficiency": round(efficiency, 4),
        "discharge_energy_wh": round(discharge * average_v, 3),
        "average_discharge_voltage_v": round(average_v, 4),
        "max_temperature_c": round(rng.gauss(45, 1), 1),
        "fixture_pressure_mpa": round(rng.gauss(5, 0.2), 2),
        "min_voltage_v": round(design.voltage_min_v + rng.uniform(0, 0.01), 4),
        "max_voltage_v": round(design.voltage_max_v - rng.uniform(0, 0.01), 4),
    }
    defects = ["short"] if upset == "short" else []
    return {"measurements": readings, "defects": defects}


def aging_readings(design: CellDesign, rng: random.Random, *, upset: str = "") -> dict[str, Any]:
    days = 7.0
    drop = rng.uniform(0.05, 0.3) if upset != "self_discharge" else rng.uniform(0.8, 2.0)
    ocv1 = rng.gauss(design.nominal_voltage_v + 0.2, 0.005)
    return {
        "measurements": {
            "ocv1_v": round(ocv1, 4),
            "ocv2_v": round(ocv1 - drop * days / 1000, 4),
            "ocv_interval_days": days,
            "k_mv_per_day": round(drop, 3),
            "acir_mohm": round(rng.gauss(2.5, 0.1), 3),
        },
        "defects": [],
    }


# The rated test's stated conditions, as the grading recipe states them.
RATED_C_RATE = 0.33
RATED_TEMPERATURE_C = 25.0


def grading_readings(design: CellDesign, rng: random.Random, *, upset: str = "") -> dict[str, Any]:
    """DCIR, the rated discharge at 0.33 C and 25 degC, and the finished cell weighed and gauged.
    The rated discharge gives a little less than formation's (slower, warmer, under pressure)."""
    capacity = design.nominal_capacity_ah * rng.gauss(0.86, 0.01)
    average_v = design.nominal_voltage_v - 0.12 + rng.gauss(0, 0.008)
    return {
        "measurements": {
            "dcir_10s_mohm": round(rng.gauss(4.0, 0.2), 3),
            "rated_discharge_capacity_ah": round(capacity, 4),
            "rated_discharge_energy_wh": round(capacity * average_v, 3),
            "rated_discharge_c_rate": RATED_C_RATE,
            "rated_discharge_temperature_c": round(rng.gauss(RATED_TEMPERATURE_C, 0.3), 1),
            "cell_mass_g": round(design.target_mass_g * rng.gauss(1.0, 0.008), 2),
            "cell_thickness_mm": round(design.thickness_mm * rng.gauss(1.0, 0.006), 3),
        },
        "defects": [],
    }


READINGS = {
    "stacking": stacking_readings,
    "pressing": pressing_readings,
    "formation": formation_readings,
    "aging": aging_readings,
    "grading": grading_readings,
}

# How a cell typically goes wrong at each step, for the seed and the simulator.
UPSETS = {
    "stacking": ["misalignment", "insulation"],
    "pressing": ["short", "low_density"],
    "formation": ["low_ice"],
    "aging": ["self_discharge"],
    "grading": [],
}


def readings_for(
    kind: str, design: CellDesign, rng: random.Random, *, upset_rate: float = 0.0
) -> dict:
    upsets = UPSETS[kind]
    upset = rng.choice(upsets) if upsets and rng.random() < upset_rate else ""
    return READINGS[kind](design, rng, upset=upset)
