"""The battery passport: every part valid against the Battery Pass 1.2.0 schema of its name, each
figure checked against the cell's record and its design's master data, and the refusals."""

from __future__ import annotations

import json
from datetime import UTC
from pathlib import Path

import pytest
from django.utils import timezone
from jsonschema import Draft4Validator

from analytics.models import PassportMasterData
from batches.models import Cell, Consumption
from batches.services import create_batch, hold_cell, release_hold, scrap_cell
from lines.models import CellDesign, Line, Route
from tests.factories import planned_batch

SCHEMAS = Path(__file__).resolve().parents[1] / "data" / "batterypass-1.2.0"
PART_SCHEMAS = {
    "generalProductInformation": "GeneralProductInformation-schema.json",
    "materialComposition": "MaterialComposition-schema.json",
    "performanceAndDurability": "PerformanceAndDurability-schema.json",
    "carbonFootprint": "CarbonFootprintForBatteries-schema.json",
}

PROTO_LOTS = {"cathode": "CAT-2611-A-01", "electrolyte": "SE-2611-01", "pouch": "POUCH-2611-01"}
YOK_LOTS = {"cathode": "CAT-2611-A-02", "electrolyte": "SE-2611-02", "pouch": "POUCH-2611-01"}

# The readings each cell is given, so the expected figures below can be worked out by hand.
FORMATION_5AH = {"first_discharge_capacity_ah": 4.5, "discharge_energy_wh": 16.4}
AGING = {"k_mv_per_day": 0.2, "acir_mohm": 2.4}
FORMATION_20AH = {"first_discharge_capacity_ah": 18.0, "discharge_energy_wh": 66.6}
GRADING = {
    "dcir_10s_mohm": 4.1,
    "rated_discharge_capacity_ah": 17.2,
    "rated_discharge_energy_wh": 61.6,
    "cell_mass_g": 190.5,
}


def validate(part: str, body: dict) -> list[str]:
    schema = json.loads((SCHEMAS / PART_SCHEMAS[part]).read_text())
    return [
        f"{'/'.join(map(str, e.path))}: {e.message}"
        for e in Draft4Validator(schema).iter_errors(body)
    ]


def _batch(line_code: str, route: str, design: str, lots: dict, by) -> list[Cell]:
    line = Line.objects.get(code=line_code)
    batch = create_batch(
        line=line,
        design=CellDesign.objects.get(code=design),
        route=Route.objects.get(line=line, code=route),
        quantity=3,
        by=by,
        material_lots=lots,
    )
    return list(batch.cells.order_by("position"))


@pytest.fixture
def proto_cells(plant, stations, record, line_engineer) -> list[Cell]:
    """Three 5 Ah cells through stack, press, form and age; nothing graded on this route."""
    cells = _batch("proto", "std-aging", "SSB-5AH-P1", PROTO_LOTS, line_engineer)
    for cell in cells:
        record(cell, stations["PR-STK-1"], material_lots=PROTO_LOTS)
        record(cell, stations["PR-PRS-1"], equipment_ref="L1")
        record(cell, stations["PR-FRM-1"], measurements=FORMATION_5AH)
        record(cell, stations["PR-AGE-1"], measurements=AGING)
    return [Cell.objects.get(pk=cell.pk) for cell in cells]


@pytest.fixture
def yokohama_cells(plant, stations, record, line_engineer) -> list[Cell]:
    """Three 20 Ah cells through the pilot route, graded with a rated discharge."""
    cells = _batch("yokohama", "pilot", "SSB-20AH-Y1", YOK_LOTS, line_engineer)
    for cell in cells:
        record(cell, stations["YK-STK-1"], material_lots=YOK_LOTS)
        record(cell, stations["YK-PRS-1"], equipment_ref="YK-WIP-1")
        record(cell, stations["YK-FRM-1"], measurements=FORMATION_20AH)
        record(cell, stations["YK-AGE-1"], measurements=AGING)
        record(cell, stations["YK-GRD-1"], measurements=GRADING)
    return [Cell.objects.get(pk=cell.pk) for cell in cells]


def passport(signed_in, user, serial: str):
    return signed_in(user).get(f"/api/v1/cells/{serial}/passport")


def stamp(moment) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize("cells", ["proto_cells", "yokohama_cells"])
def test_every_part_is_valid_against_its_schema(request, cells, signed_in, operator):
    cell = request.getfixturevalue(cells)[0]
    assert cell.status == Cell.Status.COMPLETED

    response = passport(signed_in, operator, cell.serial)

    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == set(PART_SCHEMAS)
    for part, content in body.items():
        assert validate(part, content) == [], part


def test_the_schemas_are_strict_enough_to_catch_a_wrong_part(proto_cells, signed_in, operator):
    body = passport(signed_in, operator, proto_cells[0].serial).json()
    general = dict(body["generalProductInformation"], batteryCategory="truck")
    del general["manufacturingPlace"]
    assert len(validate("generalProductInformation", general)) == 2


def test_yokohama_cell_figures_come_from_its_record(yokohama_cells, signed_in, operator):
    cell = yokohama_cells[1]
    master = PassportMasterData.objects.get(design__code="SSB-20AH-Y1", status="released")
    line = Line.objects.get(code="yokohama")
    at = stamp(cell.completed_at)

    body = passport(signed_in, operator, cell.serial).json()

    general = body["generalProductInformation"]
    assert general["productIdentifier"] == cell.serial
    assert general["batteryPassportIdentifier"] == (
        f"urn:pilotlinedemo:{cell.serial.encode().hex()}"
    )
    assert general["manufacturingDate"] == at
    assert general["batteryMass"] == pytest.approx(0.1905)  # weighed at grading, 190.5 g
    assert general["manufacturingPlace"] == {
        "addressCountry": line.site_country,
        "postalCode": line.site_postal_code,
        "streetAddress": line.site_street,
    }
    assert general["batteryCategory"] == "ev"
    assert general["manufacturerInformation"]["contactName"] == master.manufacturer_name
    assert general["operatorInformation"]["identifier"] == master.operator_identifier
    assert general["warrentyPeriod"] == "--12"

    technical = body["performanceAndDurability"]["batteryTechicalProperties"]
    assert technical["ratedCapacity"] == 20.0
    assert technical["ratedEnergy"] == pytest.approx(74.0)  # 20 Ah x 3.7 V
    assert technical["nominalVoltage"] == 3.7
    assert (technical["minimumVoltage"], technical["maximumVoltage"]) == (2.5, 4.25)
    # DCIR at grading wins over the ACIR of aging: 4.1 mOhm.
    assert technical["initialInternalResistance"] == [
        {"ohmicResistance": pytest.approx(0.0041), "batteryComponent": "cell"}
    ]
    # 0.2 mV/day over 30 days on an OCV slope of 8 mV per % SoC.
    assert technical["initialSelfDischarge"] == pytest.approx(0.75)
    assert technical["expectedNumberOfCycles"] == master.expected_cycles

    condition = body["performanceAndDurability"]["batteryCondition"]
    assert condition["capacityThroughput"] == {
        "capacityThroughputValue": pytest.approx(35.2),  # 18.0 formation + 17.2 rated
        "lastUpdate": at,
    }
    assert condition["energyThroughput"] == pytest.approx(128.2)  # 66.6 + 61.6
    assert condition["numberOfFullCycles"]["numberOfFullCyclesValue"] == pytest.approx(1.76)
    assert condition["remainingCapacity"]["remainingCapacityValue"] == 17.2
    assert condition["remainingEnergy"]["remainingEnergyalue"] == 61.6
    assert condition["stateOfCertifiedEnergy"]["stateOfCertifiedEnergyValue"] == pytest.approx(
        61.6 / 74.0 * 100
    )
    assert condition["negativeEvents"] == []
    graded = Cell.objects.get(pk=cell.pk).grade
    assert graded
    assert body["performanceAndDurability"]["x-cellGrade"] == graded

    carbon = body["carbonFootprint"]
    assert carbon["batteryCarbonFootprint"] == 68.0
    assert carbon["absoluteCarbonFootprint"] == pytest.approx(68.0 * 74.0 / 1000)
    assert sum(s["carbonFootprint"] for s in carbon["carbonFootprintPerLifecycleStage"]) == 68.0


def test_proto_cell_figures_come_from_formation_and_aging(proto_cells, signed_in, operator):
    cell = proto_cells[0]
    body = passport(signed_in, operator, cell.serial).json()

    assert body["generalProductInformation"]["batteryMass"] == pytest.approx(0.060)  # not weighed
    technical = body["performanceAndDurability"]["batteryTechicalProperties"]
    assert technical["ratedEnergy"] == pytest.approx(5.0 * 3.65)
    assert technical["initialInternalResistance"][0]["ohmicResistance"] == pytest.approx(0.0024)
    condition = body["performanceAndDurability"]["batteryCondition"]
    assert condition["capacityThroughput"]["capacityThroughputValue"] == 4.5
    assert condition["energyThroughput"] == 16.4
    assert condition["numberOfFullCycles"]["numberOfFullCyclesValue"] == pytest.approx(0.9)
    assert condition["remainingEnergy"]["remainingEnergyalue"] == 16.4
    assert condition["stateOfCertifiedEnergy"]["stateOfCertifiedEnergyValue"] == pytest.approx(
        16.4 / 18.25 * 100
    )


def test_materials_name_the_lots_the_cell_consumed(proto_cells, signed_in, operator):
    cell = proto_cells[2]
    master = PassportMasterData.objects.get(design__code="SSB-5AH-P1", status="released")
    consumed = {
        c.role: f"{c.lot.supplier} lot {c.lot.supplier_lot} ({c.lot.material})"
        for c in Consumption.objects.filter(cell=cell).select_related("lot")
    }
    assert set(consumed) == set(PROTO_LOTS)

    materials = passport(signed_in, operator, cell.serial).json()["materialComposition"]

    listed = materials["batteryMaterials"]
    assert len(listed) == len(master.materials)
    by_cas_and_role = {
        (m["batteryMaterialIdentifier"], m["batteryMaterialLocation"]["componentName"]): m
        for m in listed
    }
    labels = {
        "cathode": "Composite cathode sheet",
        "electrolyte": "Solid-electrolyte sheet",
        "anode": "Anode",
        "current_collector": "Current collector",
        "pouch": "Pouch laminate",
    }
    for source in master.materials:
        entry = by_cas_and_role[(source["cas"], labels[source["role"]])]
        assert entry["batteryMaterialMass"] == pytest.approx(source["mass_g"] / 1000)
        assert entry["isCriticalRawMaterial"] is source["critical_raw_material"]
        location = entry["batteryMaterialLocation"]
        if source["role"] in consumed:
            assert location["componentId"] == consumed[source["role"]]
        else:  # the prototype cells take no anode or collector lot: none is named
            assert "componentId" not in location
    assert materials["batteryChemistry"]["shortName"] == master.chemistry_short_name
    assert len(materials["hazardousSubstances"]) == len(master.hazardous_substances)


def test_a_released_hold_is_a_negative_event(proto_cells, signed_in, operator, quality_engineer):
    cell = proto_cells[0]
    hold = hold_cell(cell, by=quality_engineer, reason="tab weld re-inspected")
    assert passport(signed_in, operator, cell.serial).json()["code"] == "on_hold"
    release_hold(hold, by=quality_engineer, disposition="release", reason="weld fine")
    hold.refresh_from_db()

    body = passport(signed_in, operator, cell.serial).json()

    assert body["performanceAndDurability"]["batteryCondition"]["negativeEvents"] == [
        {
            "negativeEvent": f"Hold {hold.pk}: tab weld re-inspected",
            "lastUpdate": stamp(hold.closed_at),
        }
    ]


# ---------------------------------------------------------------- refusals


def test_a_cell_not_completed_is_409_not_completed(proto_batch, signed_in, operator):
    response = passport(signed_in, operator, proto_batch.cells.first().serial)
    assert response.status_code == 409
    assert response.json()["code"] == "not_completed"


def test_a_held_cell_is_409_on_hold(proto_cells, signed_in, operator, quality_engineer):
    hold_cell(proto_cells[1], by=quality_engineer, reason="suspect lot")
    response = passport(signed_in, operator, proto_cells[1].serial)
    assert response.status_code == 409
    assert response.json()["code"] == "on_hold"


def test_a_scrapped_cell_is_409_scrapped(proto_cells, signed_in, operator, quality_engineer):
    scrap_cell(proto_cells[1], by=quality_engineer, reason="swollen")
    response = passport(signed_in, operator, proto_cells[1].serial)
    assert response.status_code == 409
    assert response.json()["code"] == "scrapped"


def test_a_design_without_master_data_is_409_no_master_data(plant, signed_in, operator):
    batch = planned_batch(quantity=1)
    Line.objects.filter(pk=batch.line_id).update(
        site_street="1 Test Street", site_postal_code="12345", site_country="DE"
    )
    cell = batch.cells.get()
    Cell.objects.filter(pk=cell.pk).update(
        status=Cell.Status.COMPLETED, next_step=None, completed_at=timezone.now()
    )
    response = passport(signed_in, operator, cell.serial)
    assert response.status_code == 409
    assert response.json()["code"] == "no_master_data"


def test_a_site_without_an_address_is_409(proto_cells, signed_in, operator):
    Line.objects.filter(code="proto").update(site_street="")
    response = passport(signed_in, operator, proto_cells[0].serial)
    assert response.status_code == 409
    assert response.json()["code"] == "no_site_address"


def test_an_unknown_cell_is_404_unknown_cell(plant, signed_in, operator):
    response = passport(signed_in, operator, "NO-SUCH-CELL")
    assert response.status_code == 404
    assert response.json()["code"] == "unknown_cell"


def test_the_passport_needs_the_cell_view_permission(proto_cells, signed_in, api_as, outsider):
    assert passport(signed_in, outsider, proto_cells[0].serial).status_code == 403
    assert api_as(None).get(f"/api/v1/cells/{proto_cells[0].serial}/passport").status_code == 401


def test_a_cell_not_aged_quotes_the_designs_declared_values(
    plant, stations, record, line_engineer, signed_in, operator
):
    cell = _batch("proto", "std", "SSB-5AH-P1", PROTO_LOTS, line_engineer)[0]
    record(cell, stations["PR-STK-1"], material_lots=PROTO_LOTS)
    record(cell, stations["PR-PRS-1"], equipment_ref="L1")
    record(cell, stations["PR-FRM-1"], measurements=FORMATION_5AH)
    master = PassportMasterData.objects.get(design__code="SSB-5AH-P1", status="released")

    body = passport(signed_in, operator, cell.serial).json()

    for part, content in body.items():
        assert validate(part, content) == [], part
    technical = body["performanceAndDurability"]["batteryTechicalProperties"]
    assert technical["initialInternalResistance"][0]["ohmicResistance"] == pytest.approx(
        master.rated_internal_resistance_mohm / 1000
    )
    assert technical["initialSelfDischarge"] == master.rated_self_discharge_pct_per_month
