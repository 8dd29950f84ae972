"""A cell's battery passport (Battery Pass Data Model 1.2.0) from its record and master data.

The four parts the API serves, each valid against the data model's JSON schema of the same name.
Where each figure comes from:

generalProductInformation
  productIdentifier            the cell's serial
  batteryPassportIdentifier    urn:<master namespace>:<serial as lower-case hex>; the data model
                               allows only [a-z0-9] after the namespace, so the serial's UTF-8
                               bytes are spelt in hex (reversible, never two cells alike)
  batteryCategory              master data
  manufacturerInformation      master data (name, identifier, postal address, web); the e-mail
                               only where it matches the data model's e-mail pattern, which in
                               1.2.0 lost its backslashes ("^[w.-]+@...") and refuses ordinary
                               addresses
  manufacturingDate            the cell's completion (the end of its route)
  batteryStatus                "Original": a cell leaving the line
  batteryMass                  kg: the cell as weighed at grading (cell_mass_g), else the
                               design's target mass
  manufacturingPlace           the line's site address (Line.site_street, _postal_code, _country)
  operatorInformation          master data
  puttingIntoService           required by the data model, unknown at the factory: the cell's
                               completion, the earliest it can be put into service
  warrentyPeriod               master data, in the data model's gMonth form (--MM)

materialComposition
  batteryChemistry             master data (short and clear name)
  batteryMaterials             one per master-data substance of each role of the design's bill
                               of materials: name, CAS number, mass per cell (kg) and critical
                               raw material flag from master data; the location names the role
                               and, as componentId, the lots the cell actually consumed for it
                               ("supplier lot supplier_lot (material)", from Consumption)
  hazardousSubstances          master data, located by role

performanceAndDurability.batteryTechicalProperties
  ratedCapacity (Ah), nominalVoltage, minimumVoltage, maximumVoltage (V)   the design
  ratedEnergy (Wh)             the design's nominal capacity x nominal voltage
  initialInternalResistance    ohm, cell level: DCIR 10 s at grading (dcir_10s_mohm), else ACIR at
                               aging (acir_mohm), else the design's declared value (master data)
  initialSelfDischarge         % of capacity per 30 days: the aging OCV drop k (k_mv_per_day)
                               x 30 / the design's OCV slope (mV per % SoC, master data); for a
                               cell not aged, the design's declared value (master data)
  everything else              master data (power, cycles, lifetime, efficiencies, test, range)

performanceAndDurability.batteryCondition (the state as the cell leaves the factory)
  capacityThroughput (Ah)      the charge the cell delivered at the factory: formation's first
                               discharge plus the rated discharge at grading, where done
  energyThroughput (Wh)        the energy of the same discharges (discharge_energy_wh,
                               rated_discharge_energy_wh)
  numberOfFullCycles           capacityThroughput / rated capacity (equivalent full cycles)
  remainingCapacity (Ah)       the rated discharge's capacity, else formation's first discharge
  remainingEnergy (Wh)         batches.energy.cell_energy: the rated test's, else formation's
  stateOfCertifiedEnergy (%)   remainingEnergy / ratedEnergy x 100
  capacityFade, powerFade, roundTripEfficiencyFade, evolutionOfSelfDischarge   0: the factory's
                               measurement is the beginning-of-life reference they fade from
  currentSelfDischargingRate   the same as initialSelfDischarge
  internalResistanceIncrease, remainingPowerCapability   empty: nothing measured after the first
  negativeEvents               the cell's closed holds (their reason, closed at)
  temperatureInformation       0 s beyond the idle range: the line keeps the cell within its
                               recipes' temperature limits; no time outside is recorded
  remainingRoundTripEnergyEfficiency, roundTripEfficiencyat50PerCentCycleLife   master data
  stateOfCharge                master data (the state of charge cells are shipped at)
  every lastUpdate             the cell's completion
  x-cellGrade                  an extension (the data model has no grade; its schemas leave
                               objects open): the grade the cell got at the end of its route

carbonFootprint                master data (kg CO2e per kWh, per lifecycle stage, class, study);
  absoluteCarbonFootprint      kg CO2e: the per-kWh figure x the rated energy in kWh
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.utils import translation
from django.utils.translation import gettext as _

from analytics.models import PassportMasterData
from batches.energy import cells_energy
from batches.models import Cell, Consumption, DesignMaterial, Hold, MaterialRole
from batches.selectors import latest_measurements
from core.errors import DomainError, NotFound

PARTS = (
    "generalProductInformation",
    "materialComposition",
    "performanceAndDurability",
    "carbonFootprint",
)

# The measurements a passport reads, by the step that sends them (demo/demo_data.py READINGS).
FORMATION_CHARGE = "first_charge_capacity_ah"
FORMATION_DISCHARGE = "first_discharge_capacity_ah"
FORMATION_ENERGY = "discharge_energy_wh"
SELF_DISCHARGE = "k_mv_per_day"
ACIR = "acir_mohm"
DCIR = "dcir_10s_mohm"
RATED_CAPACITY = "rated_discharge_capacity_ah"
RATED_ENERGY = "rated_discharge_energy_wh"
MASS = "cell_mass_g"
NAMES = (
    FORMATION_CHARGE,
    FORMATION_DISCHARGE,
    FORMATION_ENERGY,
    SELF_DISCHARGE,
    ACIR,
    DCIR,
    RATED_CAPACITY,
    RATED_ENERGY,
    MASS,
)
DAYS_PER_MONTH = 30

# GeneralProductInformation 1.2.0's EmailAddressTrait, as published.
SCHEMA_EMAIL = re.compile(r"^[w.-]+@[w.-]+.[A-Za-z]{2,}$")


def timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def passport_identifier(namespace: str, serial: str) -> str:
    return f"urn:{namespace}:{serial.encode().hex()}"


def refusal(cell: Cell) -> DomainError | None:
    """Why `cell` (annotated `held`) has no passport, or None when it may have one."""
    if cell.status == Cell.Status.SCRAPPED:
        return DomainError("scrapped", _("Cell %(serial)s was scrapped.") % {"serial": cell.serial})
    if cell.status != Cell.Status.COMPLETED:
        return DomainError(
            "not_completed",
            _("Cell %(serial)s has not completed its route.") % {"serial": cell.serial},
        )
    if cell.held:
        return DomainError(
            "on_hold", _("Cell %(serial)s is on an open hold.") % {"serial": cell.serial}
        )
    line = cell.batch.line
    if not (line.site_street and line.site_postal_code and line.site_country):
        return DomainError(
            "no_site_address",
            _("Line %(line)s has no postal address for its site.") % {"line": line.code},
        )
    return None


@dataclass
class _Record:
    """What the passports of some cells read, each loaded once for all of them."""

    master: dict[int, PassportMasterData]
    bom: dict[int, list[str]]
    measured: dict[int, dict[str, float]]
    energy: dict[int, Any]
    consumed: dict[int, list[Consumption]]
    closed_holds: dict[int, list[Hold]]


def _load(cells: list[Cell]) -> _Record:
    design_ids = {cell.batch.design_id for cell in cells}
    master = {
        m.design_id: m
        for m in PassportMasterData.objects.filter(
            design_id__in=design_ids, status=PassportMasterData.Status.RELEASED
        )
    }
    bom: dict[int, list[str]] = {}
    for design_id, role in DesignMaterial.objects.filter(design_id__in=design_ids).values_list(
        "design_id", "role"
    ):
        bom.setdefault(design_id, []).append(role)
    ids = [cell.pk for cell in cells]
    consumed: dict[int, list[Consumption]] = {}
    for consumption in (
        Consumption.objects.filter(cell_id__in=ids)
        .select_related("lot")
        .order_by("cell_id", "role", "recorded_at", "id")
    ):
        consumed.setdefault(consumption.cell_id, []).append(consumption)
    closed_holds: dict[int, list[Hold]] = {}
    for row in Hold.cells.through.objects.filter(
        cell_id__in=ids, hold__status=Hold.Status.CLOSED
    ).select_related("hold"):
        closed_holds.setdefault(row.cell_id, []).append(row.hold)
    return _Record(
        master=master,
        bom=bom,
        measured=latest_measurements(ids, NAMES),
        energy=cells_energy(cells),
        consumed=consumed,
        closed_holds=closed_holds,
    )


def _contact(master: PassportMasterData, who: str) -> dict[str, Any]:
    contact: dict[str, Any] = {
        "contactName": getattr(master, f"{who}_name"),
        "identifier": getattr(master, f"{who}_identifier"),
        "postalAddress": {
            "addressCountry": getattr(master, f"{who}_country"),
            "postalCode": getattr(master, f"{who}_postal_code"),
            "streetAddress": getattr(master, f"{who}_street"),
        },
    }
    email = getattr(master, f"{who}_email")
    if email and SCHEMA_EMAIL.match(email):
        contact["emailAddress"] = email
    if web := getattr(master, f"{who}_web"):
        contact["webAddress"] = web
    return contact


def _general(cell: Cell, master: PassportMasterData, measured: dict[str, float]) -> dict:
    line = cell.batch.line
    completed = timestamp(cell.completed_at)
    mass_g = measured.get(MASS) if measured.get(MASS, 0) > 0 else cell.batch.design.target_mass_g
    return {
        "productIdentifier": cell.serial,
        "batteryPassportIdentifier": passport_identifier(master.passport_namespace, cell.serial),
        "batteryCategory": master.battery_category,
        "manufacturerInformation": _contact(master, "manufacturer"),
        "manufacturingDate": completed,
        "batteryStatus": "Original",
        "batteryMass": mass_g / 1000,
        "manufacturingPlace": {
            "addressCountry": line.site_country,
            "postalCode": line.site_postal_code,
            "streetAddress": line.site_street,
        },
        "operatorInformation": _contact(master, "operator"),
        "puttingIntoService": completed,
        "warrentyPeriod": master.warranty_period,
    }


def _lots_text(consumptions: Iterable[Consumption]) -> str:
    return "; ".join(
        f"{c.lot.supplier} lot {c.lot.supplier_lot} ({c.lot.material})" for c in consumptions
    )


def _materials(master: PassportMasterData, roles: list[str], consumed: list[Consumption]) -> dict:
    by_role: dict[str, list[Consumption]] = {}
    for consumption in consumed:
        by_role.setdefault(consumption.role, []).append(consumption)

    def location(role: str) -> dict[str, str]:
        # The passport is a data document: its words stay English whatever the page's language.
        with translation.override("en"):
            where = {"componentName": str(MaterialRole(role).label)}
        if lots := _lots_text(by_role.get(role, [])):
            where["componentId"] = lots
        return where

    return {
        "batteryChemistry": {
            "shortName": master.chemistry_short_name,
            "clearName": master.chemistry_clear_name,
        },
        "batteryMaterials": [
            {
                "batteryMaterialLocation": location(material["role"]),
                "batteryMaterialIdentifier": material["cas"],
                "batteryMaterialName": material["name"],
                "batteryMaterialMass": material["mass_g"] / 1000,
                "isCriticalRawMaterial": material["critical_raw_material"],
            }
            for role in roles
            for material in master.materials
            if material["role"] == role
        ],
        "hazardousSubstances": [
            {
                "hazardousSubstanceClass": substance["hazard_class"],
                "hazardousSubstanceName": substance["name"],
                "hazardousSubstanceConcentration": substance["concentration_pct"],
                "hazardousSubstanceImpact": list(substance["impacts"]),
                "hazardousSubstanceLocation": location(substance["role"]),
                "hazardousSubstanceIdentifier": substance["cas"],
            }
            for substance in master.hazardous_substances
        ],
    }


def rated_energy_wh(cell: Cell) -> float:
    design = cell.batch.design
    return design.nominal_capacity_ah * design.nominal_voltage_v


def _performance(
    cell: Cell,
    master: PassportMasterData,
    measured: dict[str, float],
    energy: Any,
    closed_holds: list[Hold],
) -> dict:
    design = cell.batch.design
    at = timestamp(cell.completed_at)
    rated_energy = rated_energy_wh(cell)
    resistance_mohm = measured.get(DCIR, measured.get(ACIR, master.rated_internal_resistance_mohm))
    if SELF_DISCHARGE in measured:
        self_discharge = measured[SELF_DISCHARGE] * DAYS_PER_MONTH / master.ocv_slope_mv_per_pct_soc
    else:
        self_discharge = master.rated_self_discharge_pct_per_month
    capacity_throughput = measured.get(FORMATION_DISCHARGE, 0.0) + measured.get(RATED_CAPACITY, 0.0)
    energy_throughput = measured.get(FORMATION_ENERGY, 0.0) + measured.get(RATED_ENERGY, 0.0)
    remaining_capacity = measured.get(RATED_CAPACITY, measured.get(FORMATION_DISCHARGE))
    remaining_energy = energy.energy_wh if energy is not None else None
    if remaining_capacity is None or remaining_energy is None:
        raise DomainError(
            "no_capacity_measured",
            _("Cell %(serial)s has no measured discharge (formation or rated test).")
            % {"serial": cell.serial},
        )
    return {
        "batteryTechicalProperties": {
            "originalPowerCapability": [
                {"atSoC": point["soc_pct"], "powerCapabilityAt": point["power_w"]}
                for point in master.original_power_capability
            ],
            "ratedMaximumPower": master.rated_maximum_power_w,
            "powerCapabilityRatio": master.power_capability_ratio,
            "ratedEnergy": rated_energy,
            "expectedNumberOfCycles": master.expected_cycles,
            "initialSelfDischarge": self_discharge,
            "roundtripEfficiency": master.roundtrip_efficiency_pct,
            "ratedCapacity": design.nominal_capacity_ah,
            "initialInternalResistance": [
                {"ohmicResistance": resistance_mohm / 1000, "batteryComponent": "cell"}
            ],
            "expectedLifetime": master.expected_lifetime_years,
            "nominalVoltage": design.nominal_voltage_v,
            "minimumVoltage": design.voltage_min_v,
            "maximumVoltage": design.voltage_max_v,
            "capacityThresholdForExhaustion": master.capacity_threshold_for_exhaustion_pct,
            "lifetimeReferenceTest": master.lifetime_reference_test,
            "cRateLifeCycleTest": master.c_rate_life_cycle_test,
            "temperatureRangeIdleState": master.temperature_range_idle_state_c,
        },
        "batteryCondition": {
            "energyThroughput": energy_throughput,
            "capacityThroughput": {
                "capacityThroughputValue": capacity_throughput,
                "lastUpdate": at,
            },
            "numberOfFullCycles": {
                "numberOfFullCyclesValue": capacity_throughput / design.nominal_capacity_ah,
                "lastUpdate": at,
            },
            "stateOfCertifiedEnergy": {
                "stateOfCertifiedEnergyValue": remaining_energy / rated_energy * 100,
                "lastUpdate": at,
            },
            "capacityFade": {"capacityFadeValue": 0.0, "lastUpdate": at},
            "remainingEnergy": {"remainingEnergyalue": remaining_energy, "lastUpdate": at},
            "remainingCapacity": {"remainingCapacityValue": remaining_capacity, "lastUpdate": at},
            "negativeEvents": [
                {
                    "negativeEvent": f"Hold {hold.pk}: {hold.reason}",
                    "lastUpdate": timestamp(hold.closed_at or hold.opened_at),
                }
                for hold in sorted(closed_holds, key=lambda h: h.pk)
            ],
            "temperatureInformation": {
                "timeExtremeHighTemp": 0.0,
                "timeExtremeLowTemp": 0.0,
                "timeExtremeHighTempCharging": 0.0,
                "timeExtremeLowTempCharging": 0.0,
                "lastUpdate": at,
            },
            "remainingPowerCapability": [],
            "powerFade": 0.0,
            "roundTripEfficiencyFade": 0.0,
            "evolutionOfSelfDischarge": {"evolutionOfSelfDischargeEntityValue": 0.0},
            "currentSelfDischargingRate": {
                "currentSelfDischargingRateEntity": self_discharge,
                "lastUpdate": at,
            },
            "internalResistanceIncrease": [],
            "roundTripEfficiencyat50PerCentCycleLife": (
                master.roundtrip_efficiency_50pct_cycle_life_pct
            ),
            "remainingRoundTripEnergyEfficiency": {
                "remainingRoundTripEnergyEfficiencyValue": master.roundtrip_efficiency_pct,
                "lastUpdate": at,
            },
            "stateOfCharge": {
                "stateOfChargeValue": master.shipping_state_of_charge_pct,
                "lastUpdate": at,
            },
        },
        "x-cellGrade": cell.grade,
    }


def _carbon(cell: Cell, master: PassportMasterData) -> dict:
    return {
        "batteryCarbonFootprint": master.carbon_footprint_kg_per_kwh,
        "carbonFootprintPerLifecycleStage": [
            {"lifecycleStage": stage, "carbonFootprint": value}
            for stage, value in master.carbon_footprint_stages.items()
        ],
        "carbonFootprintPerformanceClass": master.carbon_footprint_class,
        "carbonFootprintStudy": master.carbon_footprint_study,
        "absoluteCarbonFootprint": master.carbon_footprint_kg_per_kwh
        * rated_energy_wh(cell)
        / 1000,
    }


def _build(cell: Cell, record: _Record) -> dict[str, dict]:
    master = record.master.get(cell.batch.design_id)
    if master is None:
        raise DomainError(
            "no_master_data",
            _("Design %(design)s has no released passport master data.")
            % {"design": cell.batch.design.code},
        )
    measured = record.measured.get(cell.pk, {})
    return {
        "generalProductInformation": _general(cell, master, measured),
        "materialComposition": _materials(
            master, record.bom.get(cell.batch.design_id, []), record.consumed.get(cell.pk, [])
        ),
        "performanceAndDurability": _performance(
            cell,
            master,
            measured,
            record.energy.get(cell.pk),
            record.closed_holds.get(cell.pk, []),
        ),
        "carbonFootprint": _carbon(cell, master),
    }


def cells_for_passport() -> Any:
    return Cell.objects.with_hold_state().select_related("batch__line", "batch__design")


def passport_of(serial: str) -> dict[str, dict]:
    """The passport of the cell `serial`; DomainError (404 or 409) saying why there is none."""
    try:
        cell = cells_for_passport().get(serial=serial)
    except Cell.DoesNotExist:
        raise NotFound("unknown_cell", _("No cell %(serial)s.") % {"serial": serial}) from None
    if (refused := refusal(cell)) is not None:
        raise refused
    return _build(cell, _load([cell]))


def passports_of(cells: list[Cell]) -> tuple[dict[str, dict], dict[str, str]]:
    """Passports of many cells (from cells_for_passport) by serial, and why the others have
    none (serial -> code)."""
    good, refused = [], {}
    for cell in cells:
        if (why := refusal(cell)) is None:
            good.append(cell)
        else:
            refused[cell.serial] = why.code
    record = _load(good)
    passports = {}
    for cell in good:
        try:
            passports[cell.serial] = _build(cell, record)
        except DomainError as error:
            refused[cell.serial] = error.code
    return passports, refused
