"""Demo master data for the battery passport: one released version per demo design and a postal
address for each demo line's site. Illustrative figures for the demo plant, not a real product's
declaration; the contact details point at example.com on purpose."""

from __future__ import annotations

from typing import Any

from analytics.master_data import release_master_data, released_for
from lines.models import CellDesign, Line

SITE_ADDRESSES = {
    "proto": {
        "site_street": "1 Natsushima-cho, Yokosuka-shi, Kanagawa",
        "site_postal_code": "237-8523",
        "site_country": "JP",
    },
    "yokohama": {
        "site_street": "2 Takara-cho, Kanagawa-ku, Yokohama-shi, Kanagawa",
        "site_postal_code": "221-0023",
        "site_country": "JP",
    },
}

_CONTACTS = {
    "manufacturer_name": "Demo Solid-State Cells K.K. (demo master data)",
    "manufacturer_identifier": "DEMO-LEI-5493000DEMO0000001",
    "manufacturer_street": "2 Takara-cho, Kanagawa-ku, Yokohama-shi, Kanagawa",
    "manufacturer_postal_code": "221-0023",
    "manufacturer_country": "JP",
    "manufacturer_email": "passport@pilot-line.example.com",
    "manufacturer_web": "https://pilot-line.example.com/",
    "operator_name": "Demo Battery Europe B.V. (demo master data)",
    "operator_identifier": "DEMO-EORI-NL000000001",
    "operator_street": "Demoweg 1, Amsterdam",
    "operator_postal_code": "1000 AA",
    "operator_country": "NL",
    "operator_email": "passport-eu@pilot-line.example.com",
    "operator_web": "https://eu.pilot-line.example.com/",
}

_HAZARDS = [
    {
        "role": "anode",
        "name": "Lithium",
        "cas": "7439-93-2",
        "hazard_class": "SkinCorrosionOrIrritation",
        "impacts": ["H260: releases flammable gases with water", "H314: severe skin burns"],
    },
    {
        "role": "electrolyte",
        "name": "Diphosphorus pentasulfide (argyrodite precursor)",
        "cas": "1314-80-3",
        "hazard_class": "AcuteToxicity",
        "impacts": ["H302: harmful if swallowed", "H332: harmful if inhaled (H2S with water)"],
    },
]


def _materials(scale: float) -> list[dict[str, Any]]:
    """The substances of each role, masses per cell in grams for the 5 Ah design x `scale`."""
    rows = [
        ("cathode", "Lithium nickel cobalt manganese oxide (NCM811)", "346417-97-8", 24.0, True),
        ("cathode", "Carbon black", "1333-86-4", 0.5, False),
        ("electrolyte", "Lithium sulfide (argyrodite Li6PS5Cl)", "12136-58-2", 5.2, True),
        ("electrolyte", "Diphosphorus pentasulfide (argyrodite)", "1314-80-3", 5.0, False),
        ("electrolyte", "Lithium chloride (argyrodite)", "7447-41-8", 1.8, True),
        ("anode", "Lithium", "7439-93-2", 1.4, True),
        ("current_collector", "Aluminium", "7429-90-5", 3.1, True),
        ("current_collector", "Copper", "7440-50-8", 6.4, True),
        ("pouch", "Aluminium (laminate foil)", "7429-90-5", 2.3, True),
        ("pouch", "Polypropylene", "9003-07-0", 1.6, False),
    ]
    return [
        {
            "role": role,
            "name": name,
            "cas": cas,
            "mass_g": round(mass * scale, 2),
            "critical_raw_material": critical,
        }
        for role, name, cas, mass, critical in rows
    ]


def _version(design: CellDesign, scale: float, resistance_mohm: float) -> dict[str, Any]:
    energy_wh = design.nominal_capacity_ah * design.nominal_voltage_v
    mass_g = design.target_mass_g
    hazards = [
        {**hazard, "concentration_pct": round(100 * grams / mass_g, 2)}
        for hazard, grams in zip(_HAZARDS, (1.4 * scale, 5.0 * scale), strict=True)
    ]
    return {
        **_CONTACTS,
        "passport_namespace": "pilotlinedemo",
        "battery_category": "ev",
        "warranty_period": "--12",
        "chemistry_short_name": "NCM811/LPSCl/Li",
        "chemistry_clear_name": (
            "Lithium nickel cobalt manganese oxide cathode, argyrodite sulfide solid electrolyte"
            " (Li6PS5Cl), lithium metal anode"
        ),
        "materials": _materials(scale),
        "hazardous_substances": hazards,
        "rated_maximum_power_w": round(3 * energy_wh, 1),
        "power_capability_ratio": 3.0,
        "original_power_capability": [
            {"soc_pct": 80, "power_w": round(3.2 * energy_wh, 1)},
            {"soc_pct": 20, "power_w": round(2.4 * energy_wh, 1)},
        ],
        "expected_cycles": 1000,
        "expected_lifetime_years": 10,
        "c_rate_life_cycle_test": 0.33,
        "lifetime_reference_test": "https://pilot-line.example.com/passport/cycle-life-test",
        "capacity_threshold_for_exhaustion_pct": 80.0,
        "roundtrip_efficiency_pct": 95.0,
        "roundtrip_efficiency_50pct_cycle_life_pct": 93.5,
        "temperature_range_idle_state_c": 45.0,
        "shipping_state_of_charge_pct": 30.0,
        "ocv_slope_mv_per_pct_soc": 8.0,
        "rated_internal_resistance_mohm": resistance_mohm,
        "rated_self_discharge_pct_per_month": 1.0,
        "carbon_footprint_kg_per_kwh": 68.0,
        "carbon_footprint_stages": {
            "RawMaterialExtraction": 41.0,
            "MainProduction": 22.5,
            "Distribution": 1.5,
            "Recycling": 3.0,
        },
        "carbon_footprint_class": "B",
        "carbon_footprint_study": f"https://pilot-line.example.com/passport/cfp-{design.code}",
    }


DESIGNS = {"SSB-5AH-P1": (1.0, 4.0), "SSB-20AH-Y1": (3.2, 1.2)}


def seed_passport_master_data(by: str) -> None:
    for code, address in SITE_ADDRESSES.items():
        Line.objects.filter(code=code, site_street="").update(**address)
    for code, (scale, resistance_mohm) in DESIGNS.items():
        design = CellDesign.objects.filter(code=code).first()
        if design is not None and released_for(design) is None:
            release_master_data(
                design,
                _version(design, scale, resistance_mohm),
                by=by,
                note="Demo master data for the battery passport",
            )
