"""How a measurement or recipe parameter reads on the pages: one registry of display names (in the
engineers' language), the display form of units, and which fractions are read as percentages.

Measurement names are the contract's snake_case keys (stations post them, recipes limit them);
they never show on a page as such. A name not in the registry reads as its words, its unit
suffix dropped (`dew_point_c` -> "Dew point"), so a new parameter is never shown raw.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class Parameter:
    label: Promise
    # A fraction (0.858) that engineers read as a percentage (85.8 %): shown x100 with "%".
    percent: bool = False


PARAMETERS: dict[str, Parameter] = {
    # stacking
    "layer_count": Parameter(_("Layer count")),
    "max_offset_x_mm": Parameter(_("Max. offset X")),
    "max_offset_y_mm": Parameter(_("Max. offset Y")),
    "rotation_deg": Parameter(_("Rotation")),
    "stack_height_mm": Parameter(_("Stack height")),
    "stack_mass_g": Parameter(_("Stack mass")),
    "insulation_resistance_mohm": Parameter(_("Insulation resistance")),
    # pressing
    "peak_pressure_mpa": Parameter(_("Peak pressure")),
    "dwell_s": Parameter(_("Dwell time")),
    "temperature_c": Parameter(_("Temperature")),
    "thickness_before_um": Parameter(_("Thickness before pressing")),
    "thickness_after_um": Parameter(_("Thickness after pressing")),
    "relative_density_pct": Parameter(_("Relative density")),
    # formation
    "first_charge_capacity_ah": Parameter(_("First charge capacity")),
    "first_discharge_capacity_ah": Parameter(_("First discharge capacity")),
    "initial_coulombic_efficiency": Parameter(_("Initial coulombic efficiency (ICE)"), True),
    "first_cycle_efficiency": Parameter(_("First-cycle efficiency"), True),
    "later_coulombic_efficiency": Parameter(_("Later coulombic efficiency"), True),
    "discharge_energy_wh": Parameter(_("Discharge energy")),
    "average_discharge_voltage_v": Parameter(_("Average discharge voltage")),
    "max_temperature_c": Parameter(_("Max. temperature")),
    "fixture_pressure_mpa": Parameter(_("Fixture pressure")),
    "max_gap_intervals": Parameter(_("Max. data gap (intervals)")),
    "soft_short_events": Parameter(_("Soft-short events")),
    "min_voltage_v": Parameter(_("Min. voltage")),
    "max_voltage_v": Parameter(_("Max. voltage")),
    # aging / OCV
    "ocv1_v": Parameter(_("OCV 1")),
    "ocv2_v": Parameter(_("OCV 2")),
    "ocv_interval_days": Parameter(_("OCV interval")),
    "k_mv_per_day": Parameter(_("Self-discharge rate (K value)")),
    "acir_mohm": Parameter(_("AC internal resistance")),
    # grading
    "dcir_10s_mohm": Parameter(_("DC internal resistance (10 s)")),
    "rated_discharge_capacity_ah": Parameter(_("Rated discharge capacity")),
    "rated_discharge_energy_wh": Parameter(_("Rated discharge energy")),
    "rated_discharge_c_rate": Parameter(_("Rated discharge C-rate")),
    "rated_discharge_temperature_c": Parameter(_("Rated discharge temperature")),
    "cell_mass_g": Parameter(_("Cell mass")),
    "cell_thickness_mm": Parameter(_("Cell thickness")),
    # dry room
    "dew_point_c": Parameter(_("Dew point")),
    "h2s_ppm": Parameter(_("H₂S")),
    # rates and shares on the quality pages
    "yield": Parameter(_("Yield"), True),
    "first_pass_yield": Parameter(_("First-pass yield"), True),
    "share": Parameter(_("Share"), True),
}

# The units as sent (ASCII, the contract) -> as printed. Units missing here print as sent.
UNITS: dict[str, str] = {
    "degC": "°C",
    "deg": "°",
    "um": "µm",
    "MOhm": "MΩ",
    "mOhm": "mΩ",
    "kOhm": "kΩ",
    "Ohm": "Ω",
    "pct": "%",
    "ppm": "ppm",
}
# Units whose display form differs by language are translated (mV/d reads mV/日 only in Japanese).
UNITS_TRANSLATED: dict[str, Promise] = {
    "mV/d": _("mV/d"),
    "d": _("d"),
}

# Name suffixes that only repeat the unit, dropped when a name is humanised.
_UNIT_SUFFIX = re.compile(
    r"_(mm|um|mpa|s|c|g|v|mv|ah|wh|mohm|ohm|pct|deg|ppm|days|per_day|ms|kg|l)$"
)


def parameter(name: str) -> Parameter | None:
    return PARAMETERS.get(name)


def humanise(name: str) -> str:
    """A name not in the registry as words: `dew_point_max_c` -> "Dew point max"."""
    words = _UNIT_SUFFIX.sub("", str(name)).replace("_", " ").strip()
    return (words[:1].upper() + words[1:]) if words else str(name)


def label(name: str) -> str:
    known = PARAMETERS.get(name)
    return str(known.label) if known else humanise(name)


def unit(code: str | None) -> str:
    if not code:
        return ""
    if code in UNITS_TRANSLATED:
        return str(UNITS_TRANSLATED[code])
    return UNITS.get(code, code)


def is_percent(name: str) -> bool:
    known = PARAMETERS.get(name)
    return bool(known and known.percent)
