"""When each cell was last worked on (batches.CellActivity): written by the database in the
transaction of every statement that adds results, always what the cell's results say, and what
the home page counts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from analytics.selectors import line_summaries
from batches.models import Cell, CellActivity, Hold, ProcessRun
from batches.services import StepInput, StepResult, record_steps, release_hold
from tests.fixtures.stations import reading

pytestmark = pytest.mark.django_db


def _from_results() -> dict[int, tuple]:
    """Each worked cell's line and latest times, from its results."""
    rows = (
        ProcessRun.objects.order_by()
        .values("cell_id")
        .annotate(
            line=Max("station__line_id"),
            last=Max("finished_at"),
            failed=Max("finished_at", filter=Q(verdict=ProcessRun.Verdict.FAIL)),
            started=Max("finished_at", filter=Q(step__position=1)),
        )
    )
    return {r["cell_id"]: (r["line"], r["last"], r["failed"], r["started"]) for r in rows}


def _noted() -> dict[int, tuple]:
    return {
        a.cell_id: (a.line_id, a.last_run_at, a.last_failed_at, a.last_started_at)
        for a in CellActivity.objects.all()
    }


def test_each_result_moves_its_cell_s_latest_times(proto_batch, stations, record, quality_engineer):
    first, second, third = proto_batch.cells.order_by("position")[:3]
    assert _noted() == {}
    stacked = record(first, stations["PR-STK-1"])
    assert _noted() == {
        first.pk: (proto_batch.line_id, stacked.finished_at, None, stacked.finished_at)
    }
    failed = record(second, stations["PR-STK-1"], upset="misalignment")
    release_hold(
        Hold.objects.get(cells=second, status=Hold.Status.OPEN),
        by=quality_engineer,
        disposition="rework",
        reason="realigned",
    )
    reworked = record(second, stations["PR-STK-1"])
    pressed = record(first, stations["PR-PRS-1"])
    noted = _noted()
    assert noted[first.pk] == (
        proto_batch.line_id, pressed.finished_at, None, stacked.finished_at
    )  # fmt: skip
    assert noted[second.pk][1:] == (reworked.finished_at, failed.finished_at, reworked.finished_at)
    assert third.pk not in noted
    assert noted == _from_results()


def test_a_result_dated_before_the_cell_s_latest_moves_nothing_back(proto_batch, stations, record):
    cell = proto_batch.cells.get(position=1)
    stacked = record(cell, stations["PR-STK-1"])
    # The press's clock is behind: its result is dated an hour before the stacking.
    record(cell, stations["PR-PRS-1"], occurred_at=stacked.finished_at - timedelta(hours=1))
    assert CellActivity.objects.get(cell=cell).last_run_at == stacked.finished_at
    assert _noted() == _from_results()


def test_results_written_together_note_each_of_their_cells(proto_batch, stations):
    cells = list(proto_batch.cells.order_by("position")[:6])
    station = stations["PR-STK-1"]
    now = timezone.now()
    with transaction.atomic():
        locked = list(Cell.objects.select_for_update().filter(pk__in=[c.pk for c in cells]))
        outcomes = record_steps(
            [
                StepInput(
                    cell,
                    station,
                    StepResult(occurred_at=now - timedelta(minutes=i), **_reading(cell, i)),
                    "test",
                )
                for i, cell in enumerate(sorted(locked, key=lambda c: c.position))
            ]
        )
    assert all(isinstance(o, ProcessRun) for o in outcomes)
    noted = _noted()
    assert set(noted) == {c.pk for c in cells}
    assert noted == _from_results()


def _reading(cell, i: int) -> dict:
    data = reading(cell, "stacking", upset="misalignment" if i == 2 else "")
    return {"measurements": data["measurements"], "defects": data["defects"]}


def test_the_home_page_counts_are_the_cells_latest_times_in_each_window(worked_batch):
    worked_batch(10)
    failed = Cell.objects.get(runs__verdict=ProcessRun.Verdict.FAIL)
    proto = next(s for s in line_summaries() if s.line.code == "proto")
    assert (proto.today.worked, proto.today.failed, proto.today.started) == (10, 1, 10)
    assert (proto.week.worked, proto.week.failed, proto.week.started) == (10, 1, 10)
    # The failed cell last worked on before this week's Monday: in neither window.
    eight_days_ago = timezone.now() - timedelta(days=8)
    CellActivity.objects.filter(cell=failed).update(
        last_run_at=eight_days_ago, last_failed_at=eight_days_ago, last_started_at=eight_days_ago
    )
    proto = next(s for s in line_summaries() if s.line.code == "proto")
    assert (proto.week.worked, proto.week.failed, proto.week.started) == (9, 0, 9)
