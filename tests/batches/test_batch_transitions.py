from __future__ import annotations

import pytest

from audit.models import Event
from batches.models import Batch, Cell
from batches.services import cancel_batch, complete_batch, start_batch
from core.errors import DomainError

SERVICES = {
    Batch.Status.IN_PROGRESS: lambda batch, by: start_batch(batch, by=by),
    Batch.Status.COMPLETED: lambda batch, by: complete_batch(batch, by=by),
    Batch.Status.CANCELLED: lambda batch, by: cancel_batch(batch, by=by, reason="order withdrawn"),
}
PAIRS = [(old, new) for old in Batch.Status.values for new in SERVICES]


@pytest.mark.parametrize(("current", "target"), PAIRS)
def test_batch_transitions_follow_the_declared_table(proto_batch, line_engineer, current, target):
    Batch.objects.filter(pk=proto_batch.pk).update(status=current)
    # Completing needs every cell finished; that precondition has its own test below.
    proto_batch.cells.update(status=Cell.Status.SCRAPPED, next_step=None)
    proto_batch.refresh_from_db()
    events_before = Event.objects.filter(subject=proto_batch.code).count()

    if target in Batch.TRANSITIONS[current]:
        changed = SERVICES[target](proto_batch, line_engineer)
        assert changed.status == target
        assert Event.objects.filter(subject=proto_batch.code, verb=f"batch_{target}").exists()
    else:
        with pytest.raises(DomainError) as refused:
            SERVICES[target](proto_batch, line_engineer)
        assert refused.value.code == "invalid_transition"
        proto_batch.refresh_from_db()
        assert proto_batch.status == current
        assert Event.objects.filter(subject=proto_batch.code).count() == events_before


def test_a_batch_cannot_complete_while_cells_are_on_the_route(proto_batch, line_engineer):
    start_batch(proto_batch, by=line_engineer)
    with pytest.raises(DomainError) as refused:
        complete_batch(proto_batch, by=line_engineer)
    assert refused.value.code == "cells_unfinished"
    proto_batch.refresh_from_db()
    assert proto_batch.status == Batch.Status.IN_PROGRESS


def test_cancelling_a_planned_batch_scraps_its_unmade_cells(proto_batch, line_engineer):
    cancel_batch(proto_batch, by=line_engineer, reason="design change")
    assert set(proto_batch.cells.values_list("status", flat=True)) == {Cell.Status.SCRAPPED}


def test_the_first_result_starts_the_batch_and_the_last_completes_it(proto_batch, stations, record):
    line_stations = [stations["PR-STK-1"], stations["PR-PRS-1"], stations["PR-FRM-1"]]
    for station in line_stations:
        for cell in proto_batch.cells.all():
            record(cell, station, equipment_ref="cycle-1")
            proto_batch.refresh_from_db()
            assert proto_batch.status in (Batch.Status.IN_PROGRESS, Batch.Status.COMPLETED)
    proto_batch.refresh_from_db()
    assert proto_batch.status == Batch.Status.COMPLETED
    assert set(proto_batch.cells.values_list("status", flat=True)) == {Cell.Status.COMPLETED}
