"""A result that arrives before the result of the step before it waits (pending) and is applied
once that one is; wrong_step is only for a cell truly past the step."""

from __future__ import annotations

import pytest

from batches.models import Cell, ProcessRun
from stations import worker
from stations.models import InboxEntry


@pytest.fixture
def cells(proto_batch):
    return list(proto_batch.cells.all())


def row(event_id: str) -> InboxEntry:
    return InboxEntry.objects.get(event_id=event_id)


def test_pressing_before_stacking_waits_then_both_apply_in_route_order(
    station_client, cells, result_for, later
):
    stacker, presser = station_client("PR-STK-1"), station_client("PR-PRS-1")
    presser.post_results(result_for(cells[0], "pressing", event_id="P-1", occurred_at=later(60)))
    assert worker.process_entries([row("P-1").pk])["waiting"] == 1
    pressing = presser.status_of("P-1").json()
    assert (pressing["status"], pressing["reason_code"]) == ("pending", "waiting")
    assert not ProcessRun.objects.exists()

    stacker.post_results(result_for(cells[0], "stacking", event_id="S-1", occurred_at=later(0)))
    # The task for the stacking result applies it, then the pressing result that waited for it.
    assert worker.process_entries([row("S-1").pk])["applied"] == 2
    runs = list(ProcessRun.objects.filter(cell=cells[0]).order_by("id"))
    assert [r.step.station_kind for r in runs] == ["stacking", "pressing"]
    assert presser.status_of("P-1").json()["status"] == "processed"
    assert Cell.objects.get(pk=cells[0].pk).next_step.station_kind == "formation"


def test_results_of_one_request_out_of_route_order_apply_in_route_order(
    station_client, cells, result_for
):
    # A line controller relaying for several stations would send them in one request; here the
    # formation and pressing results sit in the inbox before stacking's and are processed together.
    presser, former = station_client("PR-PRS-1"), station_client("PR-FRM-1")
    stacker = station_client("PR-STK-1")
    former.post_results(result_for(cells[0], "formation", event_id="F-1"))
    presser.post_results(result_for(cells[0], "pressing", event_id="P-1"))
    stacker.post_results(result_for(cells[0], "stacking", event_id="S-1"))
    ids = list(InboxEntry.objects.order_by("id").values_list("id", flat=True))
    counts = worker.process_entries(ids)
    assert counts["applied"] == 3 and counts["waiting"] == 0
    kinds = ProcessRun.objects.filter(cell=cells[0]).order_by("id")
    assert [r.step.station_kind for r in kinds] == ["stacking", "pressing", "formation"]
    assert Cell.objects.get(pk=cells[0].pk).status == "completed"


def test_a_waiting_result_stays_pending_while_the_earlier_step_is_missing(
    station_client, cells, result_for, process_pending
):
    presser = station_client("PR-PRS-1")
    presser.post_results(result_for(cells[0], "pressing", event_id="P-1"))
    for _ in range(3):  # the sweep retrying it does not turn it into a rejection
        process_pending()
    assert (row("P-1").status, row("P-1").reason_code) == ("pending", "waiting")


def test_a_result_for_a_step_the_cell_is_past_is_rejected_as_wrong_step(
    station_client, cells, result_for, process_pending
):
    stacker, presser = station_client("PR-STK-1"), station_client("PR-PRS-1")
    stacker.post_results(result_for(cells[0], "stacking", event_id="S-1"))
    presser.post_results(result_for(cells[0], "pressing", event_id="P-1"))
    process_pending()
    stacker.post_results(result_for(cells[0], "stacking", event_id="S-2"))
    process_pending()
    assert (row("S-2").status, row("S-2").reason_code) == ("rejected", "wrong_step")
    assert ProcessRun.objects.filter(cell=cells[0]).count() == 2


def test_a_result_for_a_completed_cell_is_rejected_as_wrong_step(
    station_client, cells, result_for, process_pending
):
    for code, kind in [
        ("PR-STK-1", "stacking"),
        ("PR-PRS-1", "pressing"),
        ("PR-FRM-1", "formation"),
    ]:
        station_client(code).post_results(result_for(cells[0], kind))
    process_pending()
    station_client("PR-PRS-1").post_results(result_for(cells[0], "pressing", event_id="P-9"))
    process_pending()
    assert (row("P-9").status, row("P-9").reason_code) == ("rejected", "wrong_step")


def test_a_waiting_result_is_rejected_when_the_earlier_step_holds_the_cell(
    station_client, cells, result_for, process_pending
):
    presser, stacker = station_client("PR-PRS-1"), station_client("PR-STK-1")
    presser.post_results(result_for(cells[0], "pressing", event_id="P-1"))
    process_pending()
    # Stacking fails: the out-of-spec rule holds the cell, so the pressing result cannot apply.
    stacker.post_results(result_for(cells[0], "stacking", event_id="S-1", upset="misalignment"))
    process_pending()
    assert row("S-1").outcome == "fail"
    assert (row("P-1").status, row("P-1").reason_code) == ("rejected", "on_hold")
