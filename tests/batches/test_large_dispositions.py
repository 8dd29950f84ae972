"""A disposition of thousands of cells is carried out by a worker: the page answers at once, the
hold shows it under way and its cells stay held until the worker has closed it."""

from __future__ import annotations

import pytest

from audit.models import Event
from batches.models import Batch, Cell, Hold
from batches.services import close_requested_hold, create_batch, hold_batch, request_release
from core.errors import DomainError
from lines.models import CellDesign, Line, Route
from tests import processes


def _held_batch(quantity: int, by, before_the_hold=lambda batch: None) -> tuple[Batch, Hold]:
    line = Line.objects.get(code="proto")
    batch = create_batch(
        line=line,
        design=CellDesign.objects.get(code="SSB-5AH-P1"),
        route=Route.objects.get(line=line, code="std"),
        quantity=quantity,
        by=by,
    )
    before_the_hold(batch)
    return batch, hold_batch(batch, by=by, reason="SE lot recall from the supplier")


@pytest.mark.processes
@pytest.mark.django_db(transaction=True)
def test_a_10000_cell_scrap_from_the_page_is_done_by_a_worker(
    plant, line_engineer, quality_engineer, signed_in, settings, tmp_path
):
    batch, hold = _held_batch(10_000, line_engineer)
    stack = processes.Stack(processes.shared_broker_url(), tmp_path)
    settings.CELERY_TASK_DEFAULT_QUEUE = stack.env["CELERY_TASK_DEFAULT_QUEUE"]
    try:
        stack.start_worker()
        client = signed_in(quality_engineer)
        response = client.post(
            f"/holds/{hold.pk}/disposition",
            {"disposition": "scrap", "reason": "recalled SE lot in every cell", "confirm": "1"},
        )
        assert response.status_code == 302
        asked = Hold.objects.get(pk=hold.pk)
        # The request only asked: unless the worker was quicker than this line, it is under way.
        if asked.status == "open":
            assert asked.closing["cells"] == 10_000
            row = client.get(f"/holds/{hold.pk}/row").content.decode()
            assert "under way in a worker" in row or "closed" in row
        assert Event.objects.filter(verb="hold_closing_requested", data__hold=hold.pk).exists()
        processes.wait_for(
            lambda: Hold.objects.get(pk=hold.pk).status == "closed",
            timeout=120,
            what="the worker closing the hold",
        )
    finally:
        stack.stop()
    closed = Hold.objects.get(pk=hold.pk)
    assert (closed.disposition, closed.closing, closed.closing_error) == ("scrap", None, "")
    assert closed.closed_by == quality_engineer
    assert batch.cells.filter(status=Cell.Status.SCRAPPED).count() == 10_000
    scrapped = Event.objects.filter(verb="cell_scrapped", reason__startswith=f"hold {hold.pk}:")
    assert scrapped.count() == 10_000
    assert Event.objects.get(verb="hold_closed", data__hold=hold.pk).data["cells"] == 10_000


def test_a_disposition_the_worker_cannot_carry_out_leaves_the_hold_open_saying_why(
    plant,
    line_engineer,
    quality_engineer,
    settings,
    django_capture_on_commit_callbacks,
):
    settings.DISPOSITION_IN_REQUEST_MAX_CELLS = 3
    batch, hold = _held_batch(5, line_engineer)
    with django_capture_on_commit_callbacks() as sent:
        request_release(hold, by=quality_engineer, disposition="scrap", reason="recall")
    assert len(sent) == 1  # the task, sent once the request commits
    # What the worker reads was written by a version that knew a step this one does not.
    Hold.objects.filter(pk=hold.pk).update(
        closing={
            **Hold.objects.get(pk=hold.pk).closing,
            "disposition": "rework",
            "rework_at": "baking",
        }
    )
    assert close_requested_hold(hold.pk) is None  # what the worker runs
    refused = Hold.objects.get(pk=hold.pk)
    assert refused.status == "open" and refused.closing is None
    assert "Unknown step 'baking'" in refused.closing_error
    assert all(c.status == "planned" for c in batch.cells.all())
    assert Hold.objects.get(pk=hold.pk).cells.count() == 5  # still held


def test_a_worker_rework_sends_back_only_the_cells_that_did_the_step(
    plant, line_engineer, quality_engineer, settings, stations, record
):
    settings.DISPOSITION_IN_REQUEST_MAX_CELLS = 3

    def press_two(batch):
        for cell in batch.cells.order_by("position")[:2]:
            record(cell, stations["PR-STK-1"])
            record(cell, stations["PR-PRS-1"], equipment_ref="L1")

    batch, hold = _held_batch(5, line_engineer, press_two)
    cells = list(batch.cells.order_by("position"))
    request_release(
        hold, by=quality_engineer, disposition="rework", reason="re-press", rework_at="pressing"
    )
    close_requested_hold(hold.pk)
    assert Hold.objects.get(pk=hold.pk).status == "closed"
    reworked = Event.objects.filter(verb="cell_rework", reason__startswith=f"hold {hold.pk}:")
    assert sorted(reworked.values_list("subject", flat=True)) == [c.serial for c in cells[:2]]
    assert {e.data["step"] for e in reworked} == {"pressing"}
    released = Event.objects.filter(verb="cell_released", data__hold=hold.pk)
    assert sorted(released.values_list("subject", flat=True)) == [c.serial for c in cells[2:]]


def test_a_hold_being_closed_cannot_be_closed_again(
    plant, line_engineer, quality_engineer, settings
):
    settings.DISPOSITION_IN_REQUEST_MAX_CELLS = 3
    _, hold = _held_batch(5, line_engineer)
    request_release(hold, by=quality_engineer, disposition="scrap", reason="recall")
    with pytest.raises(DomainError) as refused:
        request_release(hold, by=quality_engineer, disposition="release", reason="changed mind")
    assert refused.value.code == "closing"


def test_a_small_hold_is_closed_in_the_request(plant, line_engineer, quality_engineer):
    _, hold = _held_batch(5, line_engineer)
    closed = request_release(hold, by=quality_engineer, disposition="release", reason="fine")
    assert (closed.status, closed.closing) == ("closed", None)
    released = Event.objects.filter(verb="cell_released", data__hold=hold.pk)
    assert released.count() == 5
