"""The worker's service applies each inbox row with record_step: processed with its outcome, or
rejected with the reason (and nothing else changed)."""

from __future__ import annotations

import pytest

from audit.models import Event
from batches.models import Cell, Curve, Measurement, ProcessRun
from batches.services import hold_cell, scrap_cell
from stations import worker
from stations.models import InboxEntry


@pytest.fixture
def stacker(station_client):
    return station_client("PR-STK-1")


@pytest.fixture
def cells(proto_batch):
    return list(proto_batch.cells.all())


def entry(event_id: str) -> InboxEntry:
    return InboxEntry.objects.get(event_id=event_id)


def test_processing_applies_a_result_to_its_cell(stacker, cells, result_for, process_pending):
    result = result_for(cells[0], "stacking")
    stacker.post_results(result)
    assert process_pending()["applied"] == 1
    row = entry(result["event_id"])
    assert (row.status, row.outcome, row.violations, row.reason) == ("processed", "pass", [], "")
    run = ProcessRun.objects.get(event_id=result["event_id"])
    assert row.run == run and run.station == stacker.station and run.verdict == "pass"
    assert run.measurements.count() == len(result["measurements"])
    cells[0].refresh_from_db()
    assert cells[0].next_step.station_kind == "pressing"
    status = stacker.status_of(result["event_id"]).json()
    assert status["status"] == "processed" and status["outcome"] == "pass"


def test_processing_records_out_of_spec_values_as_fail_with_violations(
    stacker, cells, result_for, process_pending
):
    result = result_for(cells[0], "stacking", upset="misalignment")
    stacker.post_results(result)
    process_pending()
    status = stacker.status_of(result["event_id"]).json()
    assert status["status"] == "processed"
    assert status["outcome"] == "fail"
    assert [v["parameter"] for v in status["violations"]] == ["max_offset_x_mm"]
    assert {"parameter", "value", "min", "max"} <= set(status["violations"][0])


def test_processing_rejects_an_unknown_cell(stacker, result_for, process_pending):
    stacker.post_results(result_for("NO-SUCH-CELL", "stacking", event_id="E-1"))
    process_pending()
    row = entry("E-1")
    assert (row.status, row.reason_code) == ("rejected", "unknown_cell")
    assert "NO-SUCH-CELL" in row.reason
    assert not ProcessRun.objects.exists()


def test_processing_rejects_another_lines_cell_as_wrong_station(
    station_client, cells, result_for, process_pending
):
    yokohama_stacker = station_client("YK-STK-1")
    response = yokohama_stacker.post_results(result_for(cells[0], "stacking", event_id="E-1"))
    assert response.status_code == 202  # the shape is fine: the rule is the worker's to judge
    process_pending()
    status = yokohama_stacker.status_of("E-1").json()
    assert (status["status"], status["reason_code"]) == ("rejected", "wrong_station")
    assert status["reason"] and status["outcome"] is None
    assert not ProcessRun.objects.exists()
    cells[0].refresh_from_db()
    assert cells[0].status == "planned"


def test_processing_rejects_a_result_for_a_cell_on_hold(
    stacker, cells, result_for, process_pending, quality_engineer
):
    hold_cell(cells[0], by=quality_engineer, reason="Suspect stack")
    events = Event.objects.count()
    stacker.post_results(result_for(cells[0], "stacking", event_id="E-1"))
    process_pending()
    assert (entry("E-1").status, entry("E-1").reason_code) == ("rejected", "on_hold")
    assert not ProcessRun.objects.exists()
    assert Event.objects.count() == events  # changes nothing else


def test_processing_rejects_a_result_for_a_scrapped_cell(
    stacker, cells, result_for, process_pending, quality_engineer
):
    scrap_cell(cells[0], by=quality_engineer, reason="Dropped")
    stacker.post_results(result_for(cells[0], "stacking", event_id="E-1"))
    process_pending()
    assert (entry("E-1").status, entry("E-1").reason_code) == ("rejected", "scrapped")


def test_processing_rejects_an_unknown_material_lot_without_a_trace(
    stacker, cells, result_for, process_pending
):
    result = result_for(cells[0], "stacking", material_lots={"cathode": "NO-SUCH-LOT"})
    stacker.post_results(result)
    process_pending()
    assert entry(result["event_id"]).reason_code == "unknown_lot"
    assert not ProcessRun.objects.exists() and not Measurement.objects.exists()


def test_processing_a_redelivered_task_changes_nothing(stacker, cells, result_for):
    stacker.post_results(result_for(cells[0], "stacking", event_id="E-1"))
    ids = [entry("E-1").pk]
    assert worker.process_entries(ids)["applied"] == 1
    assert worker.process_entries(ids) == dict.fromkeys(
        ["applied", "rejected", "waiting", "retry", "skipped"], 0
    )
    assert ProcessRun.objects.count() == 1


def test_processing_one_bad_result_does_not_hold_back_the_others(
    stacker, cells, result_for, process_pending
):
    stacker.post_results(
        result_for(cells[0], "stacking"),
        result_for("NO-SUCH-CELL", "stacking", event_id="E-bad"),
        result_for(cells[1], "stacking"),
    )
    assert process_pending() | {} == {
        "applied": 2,
        "rejected": 1,
        "waiting": 0,
        "retry": 0,
        "skipped": 0,
    }


def test_processing_stores_each_pressing_curve_as_one_row(
    station_client, cells, result_for, record, stations, process_pending
):
    record(cells[0], stations["PR-STK-1"])
    presser = station_client("PR-PRS-1")
    result = result_for(cells[0], "pressing", curves=True)
    points = len(result["curves"]["pressure"]["t_s"])
    presser.post_results(result)
    process_pending()
    curves = {c.name: c for c in Curve.objects.filter(run__event_id=result["event_id"])}
    assert set(curves) == {"pressure", "temperature"}
    assert len(curves["pressure"].x) == len(curves["pressure"].y) == points > 2000
    assert curves["pressure"].unit == "MPa"


def test_processing_derives_peak_pressure_and_dwell_from_the_pressure_curve(
    station_client, cells, result_for, record, stations, process_pending
):
    record(cells[0], stations["PR-STK-1"])
    presser = station_client("PR-PRS-1")
    result = result_for(cells[0], "pressing", curves=True)
    sent_dwell = result["measurements"].pop("dwell_s")
    sent_peak = result["measurements"].pop("peak_pressure_mpa")
    presser.post_results(result)
    process_pending()
    derived = dict(
        Measurement.objects.filter(run__event_id=result["event_id"]).values_list("name", "value")
    )
    # The demo curve ripples by +-0.2 % around the nominal peak during the dwell.
    assert derived["peak_pressure_mpa"] == pytest.approx(sent_peak, rel=0.0021)
    # The demo curve ramps over 30 s and releases over 20 s: within 2 % of the peak for the
    # last 0.6 s of the ramp and the first 0.4 s of the release, besides the dwell itself.
    assert derived["dwell_s"] == pytest.approx(sent_dwell + 1.0, abs=0.15)
    assert entry(result["event_id"]).status == "processed"


def test_pressing_features_count_only_time_at_98_percent_of_peak():
    t_s = [0, 1, 2, 3, 4, 5, 6]
    pressure = [0, 100, 99, 50, 100, 98, 0]
    assert worker.pressing_features(t_s, pressure) == {
        "peak_pressure_mpa": 100.0,
        "dwell_s": 4.0,  # from t=1,2 and t=4,5; the dip at t=3 is not dwell
    }


def test_processing_the_last_step_completes_the_cell(
    station_client, cells, result_for, process_pending
):
    for code, kind in [
        ("PR-STK-1", "stacking"),
        ("PR-PRS-1", "pressing"),
        ("PR-FRM-1", "formation"),
    ]:
        station_client(code).post_results(result_for(cells[0], kind))
    process_pending()
    cell = Cell.objects.get(pk=cells[0].pk)
    assert cell.status == "completed" and cell.next_step is None
    assert InboxEntry.objects.filter(status="processed").count() == 3


def test_aging_self_discharge_k_is_computed_from_the_two_ocv_checks():
    from stations.worker import aging_features

    # 3.9000 V then 3.8972 V seven days later: 2.8 mV in 7 days is 0.4 mV/day.
    assert aging_features({"ocv1_v": 3.9, "ocv2_v": 3.8972, "ocv_interval_days": 7.0}) == {
        "k_mv_per_day": pytest.approx(0.4)
    }
    assert aging_features({"ocv1_v": 3.9}) == {}
