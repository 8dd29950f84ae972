"""A batch's counts per step (batches.BatchStepCount): changes written by the database in the
transaction of every statement that adds, changes or removes cell steps, and folded by beat's
compaction, always sum to what counting the cells' steps gives; a batch's progress reads them."""

from __future__ import annotations

import importlib

import psycopg
import pytest
from django.db import connection
from django.db.models import Count, Q, Sum

from batches.models import BatchStepCount, CellStep, Hold, ProcessRun
from batches.selectors import progress_of
from batches.services import compact_batch_step_counts, release_hold
from batches.tasks import compact_batch_step_counts as compact_task
from tests import processes

pytestmark = pytest.mark.django_db


def _counted() -> dict[tuple[int, str], tuple[int, int]]:
    """Each batch's cells that passed and failed each step, counted from their cell steps."""
    rows = (
        CellStep.objects.order_by()
        .values("batch_id", "step")
        .annotate(
            passed=Count("pk", filter=Q(passes__gt=0)), failed=Count("pk", filter=Q(fails__gt=0))
        )
    )
    return {
        (r["batch_id"], r["step"]): (r["passed"], r["failed"])
        for r in rows
        if (r["passed"], r["failed"]) != (0, 0)
    }


def _summed() -> dict[tuple[int, str], tuple[int, int]]:
    rows = (
        BatchStepCount.objects.order_by()
        .values("batch_id", "step")
        .annotate(passed=Sum("passed"), failed=Sum("failed"))
    )
    return {
        (r["batch_id"], r["step"]): (r["passed"], r["failed"])
        for r in rows
        if (r["passed"], r["failed"]) != (0, 0)
    }


def assert_summed_as_counted() -> None:
    assert _summed() == _counted()


@pytest.fixture
def worked(proto_batch, stations, record, quality_engineer):
    """Four cells stacked: the first fails, is reworked and passes; the second fails and is
    held; the others pass and the third is pressed."""
    cells = list(proto_batch.cells.order_by("position")[:4])
    record(cells[0], stations["PR-STK-1"], upset="misalignment")
    hold = Hold.objects.get(cells=cells[0], status=Hold.Status.OPEN)
    release_hold(hold, by=quality_engineer, disposition="rework", reason="realigned")
    record(cells[0], stations["PR-STK-1"])
    record(cells[1], stations["PR-STK-1"], upset="insulation")
    record(cells[2], stations["PR-STK-1"])
    record(cells[3], stations["PR-STK-1"])
    record(cells[2], stations["PR-PRS-1"])
    return cells


def test_results_count_each_cell_once_as_passed_and_once_as_failed_per_step(proto_batch, worked):
    assert_summed_as_counted()
    # The reworked cell both failed and passed stacking: counted in each, once.
    assert _summed()[(proto_batch.pk, "stacking")] == (3, 2)
    assert _summed()[(proto_batch.pk, "pressing")] == (1, 0)


def test_the_batch_progress_shows_the_sums(proto_batch, worked):
    batch = type(proto_batch).objects.prefetch_related("route__steps").get(pk=proto_batch.pk)
    (progress,) = progress_of([batch])
    shown = {s.step.station_kind: (s.passed, s.failed) for s in progress.steps}
    assert shown["stacking"] == (3, 2) and shown["pressing"] == (1, 0)
    assert shown["formation"] == (0, 0)


def test_changed_and_removed_cell_steps_change_the_sums(proto_batch, worked):
    # As only the owner can (a result's correction by hand, a batch's cells removed).
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE batches_cellstep SET passes = 0, fails = 1"
            " WHERE batch_id = %s AND step = 'pressing'",
            [proto_batch.pk],
        )
        assert_summed_as_counted()
        cursor.execute(
            "DELETE FROM batches_cellstep WHERE batch_id = %s AND step = 'stacking' AND fails > 0",
            [proto_batch.pk],
        )
    assert_summed_as_counted()
    assert _summed()[(proto_batch.pk, "stacking")] == (2, 0)
    assert _summed()[(proto_batch.pk, "pressing")] == (0, 1)


def test_cell_steps_summed_again_from_the_results_count_again(proto_batch, worked):
    migration = importlib.import_module("batches.migrations.0026_cell_step_selection")
    with connection.cursor() as cursor:
        cursor.execute(migration.RESUM)
    assert_summed_as_counted()
    assert _summed()[(proto_batch.pk, "stacking")] == (3, 2)


def test_compaction_folds_each_batch_steps_rows_into_one_with_the_same_sums(proto_batch, worked):
    before = _summed()
    rows = BatchStepCount.objects.count()
    assert rows > BatchStepCount.objects.values("batch", "step").distinct().count()

    removed = compact_batch_step_counts()

    assert removed == rows - BatchStepCount.objects.count() > 0
    assert _summed() == before
    assert (
        BatchStepCount.objects.count()
        == BatchStepCount.objects.values("batch", "step").distinct().count()
    )
    assert not BatchStepCount.objects.filter(passed=0, failed=0).exists()
    assert compact_task() == 0  # beat's task: nothing left to fold


def test_the_migrations_backfill_counts_as_the_triggers_do(worked):
    migration = importlib.import_module("batches.migrations.0033_batch_step_counts")
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM batches_batchstepcount")
        cursor.execute(migration.BACKFILL)
    assert_summed_as_counted()
    assert BatchStepCount.objects.count() == len(_counted())


@pytest.mark.django_db(transaction=True)
def test_compaction_leaves_the_rows_of_a_transaction_still_open_and_counts_them_after(
    proto_batch, stations, record
):
    """Beat folds while results are being applied: what it cannot see yet it leaves alone, and
    waits for no one."""
    first, second = proto_batch.cells.order_by("position")[:2]
    stacked = record(first, stations["PR-STK-1"])
    with psycopg.connect(processes.test_database_url(), autocommit=False) as applying:
        applying.execute("SET lock_timeout = '5s'")
        # The second cell's result as the first's, applied in a transaction left open.
        columns = [
            f.column for f in ProcessRun._meta.concrete_fields if f.name not in ("id", "cell")
        ]
        applying.execute(
            f"INSERT INTO batches_processrun (cell_id, {', '.join(columns)})"
            f" SELECT %s, {', '.join(columns)} FROM batches_processrun WHERE id = %s",
            [second.pk, stacked.pk],
        )
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '5s'")  # waiting for the open one would fail
            try:
                compact_batch_step_counts()
            finally:
                cursor.execute("RESET lock_timeout")
        assert _summed()[(proto_batch.pk, "stacking")] == (1, 0)
        applying.commit()
    assert _summed()[(proto_batch.pk, "stacking")] == (2, 0)
    assert_summed_as_counted()
    compact_batch_step_counts()
    assert_summed_as_counted()
    assert ProcessRun.objects.filter(cell=second).count() == 1
