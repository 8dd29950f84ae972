"""A result is judged by the recipe version the station ran: the one it names, else the one in
force for the cell's design when the result happened, however long it waited in the inbox."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from batches.models import Measurement, ProcessRun
from batches.services import create_batch
from lines.models import CellDesign, Line, Recipe, Route
from lines.services import create_recipe_version, release_recipe_version, supersede_recipe

WIDE = {
    "peak_pressure_mpa": {"unit": "MPa", "target": 500.0, "min": 375.0, "max": 700.0},
    "dwell_s": {"unit": "s", "target": 300.0, "min": 60.0, "max": 600.0},
}
NARROW = {**WIDE, "peak_pressure_mpa": {"unit": "MPa", "target": 500.0, "min": 450.0, "max": 550.0}}


@pytest.fixture
def pressing(plant, line_engineer) -> Recipe:
    """The proto line's default pressing recipe, with the WIDE limits in force."""
    recipe = Recipe.objects.get(line__code="proto", station_kind="pressing", design=None)
    supersede_recipe(recipe, by=line_engineer, parameters=WIDE, note="wide window")
    return recipe


@pytest.fixture
def stacked_cell(proto_batch, station_client, result_for, process_pending):
    cell = proto_batch.cells.order_by("position").first()
    station_client("PR-STK-1").post_results(result_for(cell, "stacking", event_id="S-1"))
    assert process_pending()["applied"] == 1
    return cell


def pressed(cell, **fields) -> dict:
    body = {
        "event_id": "P-1",
        "cell": cell.serial,
        "occurred_at": timezone.now().isoformat(),
        "measurements": {"peak_pressure_mpa": 620.0, "dwell_s": 300.0},
    }
    return {**body, **fields}


def test_a_result_waiting_across_a_release_is_judged_by_the_version_in_force_when_it_happened(
    pressing, stacked_cell, station_client, process_pending, line_engineer
):
    wide = pressing.versions.get(status="released")
    presser = station_client("PR-PRS-1")
    presser.post_results(pressed(stacked_cell))  # 620 MPa: in the wide window, not the narrow
    supersede_recipe(pressing, by=line_engineer, parameters=NARROW, note="tighter")
    assert process_pending()["applied"] == 1
    run = ProcessRun.objects.get(event_id="P-1")
    assert (run.recipe_version, run.verdict) == (wide, "pass")
    assert presser.status_of("P-1").json()["outcome"] == "pass"


def test_a_result_after_the_release_is_judged_by_the_new_version(
    pressing, stacked_cell, station_client, process_pending, line_engineer
):
    narrow = supersede_recipe(pressing, by=line_engineer, parameters=NARROW, note="tighter")
    later = (timezone.now() + timedelta(seconds=1)).isoformat()
    station_client("PR-PRS-1").post_results(pressed(stacked_cell, occurred_at=later))
    process_pending()
    run = ProcessRun.objects.get(event_id="P-1")
    assert (run.recipe_version, run.verdict) == (narrow, "fail")
    assert [v["parameter"] for v in run.violations] == ["peak_pressure_mpa"]


def test_a_result_naming_its_version_is_judged_by_it(
    pressing, stacked_cell, station_client, process_pending, line_engineer
):
    wide = pressing.versions.get(status="released")
    supersede_recipe(pressing, by=line_engineer, parameters=NARROW, note="tighter")
    later = (timezone.now() + timedelta(seconds=1)).isoformat()
    body = pressed(stacked_cell, occurred_at=later, recipe_version=wide.version)
    station_client("PR-PRS-1").post_results(body)
    process_pending()
    run = ProcessRun.objects.get(event_id="P-1")
    assert (run.recipe_version, run.verdict) == (wide, "pass")


@pytest.mark.parametrize("version", [999, 1_000_000])
def test_a_version_the_station_was_never_served_is_rejected_naming_it(
    pressing, stacked_cell, station_client, process_pending, version
):
    presser = station_client("PR-PRS-1")
    presser.post_results(pressed(stacked_cell, recipe_version=version))
    assert process_pending()["rejected"] == 1
    status = presser.status_of("P-1").json()
    assert status["reason_code"] == "unknown_recipe_version"
    assert f"version {version}" in status["reason"] and "PR-PRS-1" in status["reason"]
    assert not ProcessRun.objects.filter(event_id="P-1").exists()


def test_a_draft_version_is_one_the_station_was_never_served(
    pressing, stacked_cell, station_client, process_pending, line_engineer
):
    draft = create_recipe_version(pressing, by=line_engineer, parameters=NARROW)
    presser = station_client("PR-PRS-1")
    presser.post_results(pressed(stacked_cell, recipe_version=draft.version))
    process_pending()
    assert presser.status_of("P-1").json()["reason_code"] == "unknown_recipe_version"


def test_a_malformed_version_is_refused_whole(pressing, stacked_cell, station_client):
    response = station_client("PR-PRS-1").post_results(pressed(stacked_cell, recipe_version="v3"))
    assert (response.status_code, response.json()["code"]) == (400, "invalid")
    assert "recipe_version" in str(response.json()["errors"])


def test_a_design_with_its_own_recipe_is_served_and_judged_by_it_others_by_the_default(
    pressing, plant, station_client, result_for, process_pending, line_engineer
):
    line = Line.objects.get(code="proto")
    p1 = CellDesign.objects.get(code="SSB-5AH-P1")
    # A second design of the same build (the line's stacking recipe suits both) without a
    # pressing recipe of its own.
    y1 = CellDesign.objects.get(pk=p1.pk)
    y1.pk, y1.code, y1.name = None, "SSB-5AH-P1B", "P1 with another supplier's SE"
    y1.save()
    own = Recipe.objects.create(
        line=line, station_kind="pressing", design=p1, name="Proto pressing for SSB-5AH-P1"
    )
    release_recipe_version(
        create_recipe_version(own, by=line_engineer, parameters=NARROW), by=line_engineer
    )
    route = Route.objects.get(line=line, code="std")
    cells = {}
    for design in (p1, y1):
        batch = create_batch(line=line, design=design, route=route, quantity=1, by=line_engineer)
        cells[design.code] = batch.cells.get()
        station_client("PR-STK-1").post_results(
            result_for(cells[design.code], "stacking", event_id=f"S-{design.code}")
        )
    process_pending()
    presser = station_client("PR-PRS-1")
    served = presser.post_json("/api/v1/station/track-in", {"cell": cells["SSB-5AH-P1"].serial})
    assert served.json()["recipe"]["name"] == own.name
    assert served.json()["recipe"]["parameters"]["peak_pressure_mpa"]["min"] == 450.0
    default = presser.post_json("/api/v1/station/track-in", {"cell": cells["SSB-5AH-P1B"].serial})
    assert default.json()["recipe"]["name"] == pressing.name
    assert presser.get("/api/v1/station").json()["recipe"]["name"] == pressing.name
    for code, cell in cells.items():
        presser.post_results(pressed(cell, event_id=f"P-{code}"))
    process_pending()
    verdicts = dict(
        ProcessRun.objects.filter(step__station_kind="pressing").values_list(
            "cell__batch__design__code", "verdict"
        )
    )
    assert verdicts == {"SSB-5AH-P1": "fail", "SSB-5AH-P1B": "pass"}  # 620 MPa: narrow, wide


def test_an_extra_diagnostic_reading_is_kept_unjudged_and_fails_nothing(
    pressing, stacked_cell, station_client, process_pending, api_as, operator
):
    body = pressed(stacked_cell)
    body["measurements"]["vessel_oil_temp_c"] = 41.5
    station_client("PR-PRS-1").post_results(body)
    process_pending()
    run = ProcessRun.objects.get(event_id="P-1")
    assert (run.verdict, run.violations) == ("pass", [])
    extra = Measurement.objects.get(run=run, name="vessel_oil_temp_c")
    assert (extra.value, extra.in_spec, extra.min, extra.max) == (41.5, None, None, None)
    shown = api_as(operator).get(f"/api/v1/cells/{stacked_cell.serial}").json()
    pressing_run = next(r for r in shown["runs"] if r["step"] == "pressing")
    assert pressing_run["measurements"]["vessel_oil_temp_c"]["in_spec"] is None


def test_a_required_reading_that_is_missing_still_fails(
    pressing, stacked_cell, station_client, process_pending
):
    station_client("PR-PRS-1").post_results(
        pressed(stacked_cell, measurements={"peak_pressure_mpa": 500.0, "other_c": 1.0})
    )
    process_pending()
    run = ProcessRun.objects.get(event_id="P-1")
    assert run.verdict == "fail"
    assert [(v["parameter"], v["problem"]) for v in run.violations] == [("dwell_s", "missing")]


def test_who_ran_the_step_and_when_it_began_are_recorded(
    pressing, stacked_cell, station_client, process_pending
):
    began = timezone.now() - timedelta(minutes=7)
    station_client("PR-PRS-1").post_results(
        pressed(stacked_cell, operator="badge-0042", started_at=began.isoformat())
    )
    process_pending()
    run = ProcessRun.objects.get(event_id="P-1")
    assert (run.operator, run.started_at) == ("badge-0042", began)
