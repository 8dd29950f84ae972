"""Rows are applied many per transaction: a task takes along its line's fresh rows, and a row the
database refuses costs only that row (the chunk is applied again one row at a time)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from batches.models import Batch, Measurement, ProcessRun
from batches.services import create_batch
from core import partitions
from lines.models import CellDesign, Line, Route
from stations import worker
from stations.models import InboxEntry

POISON = 4242.4242  # a value the test trigger below makes PostgreSQL refuse


@pytest.fixture
def cells(proto_batch):
    return list(proto_batch.cells.all())


@pytest.fixture
def refuse_poisoned_measurements(db):
    """A trigger that makes the database itself refuse one measurement: a real error from the
    real server, as a deadlock or a lost connection would raise, for one row of a chunk."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            CREATE FUNCTION test_refuse_poison() RETURNS trigger AS $$
            BEGIN
                IF NEW.value = {POISON} THEN RAISE EXCEPTION 'poisoned measurement'; END IF;
                RETURN NEW;
            END $$ LANGUAGE plpgsql;
            CREATE TRIGGER test_refuse_poison BEFORE INSERT ON batches_measurement
                FOR EACH ROW EXECUTE FUNCTION test_refuse_poison();
            """
        )
    yield
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER IF EXISTS test_refuse_poison ON batches_measurement")


def poisoned(result: dict) -> dict:
    return {**result, "measurements": {**result["measurements"], "layer_count": POISON}}


def test_a_task_takes_along_its_lines_fresh_rows_and_their_tasks_then_do_nothing(
    station_client, cells, result_for, plant
):
    stacker = station_client("PR-STK-1")
    for cell in cells[:3]:
        stacker.post_results(result_for(cell, "stacking"))
    yokohama = Line.objects.get(code="yokohama")
    other_line = create_batch(
        line=yokohama,
        design=CellDesign.objects.get(code="SSB-5AH-P1"),
        route=Route.objects.get(line=yokohama, code="pilot"),
        quantity=1,
        by="test",
    )
    station_client("YK-STK-1").post_results(result_for(other_line.cells.get(), "stacking"))
    ids = list(InboxEntry.objects.order_by("id").values_list("id", flat=True))

    assert worker.process_entries(ids[:1])["applied"] == 3
    assert worker.process_entries(ids[1:3])["applied"] == 0  # their own tasks: done already
    assert InboxEntry.objects.get(pk=ids[3]).status == "pending"  # another line's row waits
    assert ProcessRun.objects.filter(cell__in=cells[:3]).count() == 3


def test_a_row_the_database_refuses_costs_only_that_row(
    station_client, cells, result_for, refuse_poisoned_measurements
):
    stacker = station_client("PR-STK-1")
    stacker.post_results(
        result_for(cells[0], "stacking", event_id="A"),
        poisoned(result_for(cells[1], "stacking", event_id="B")),
        result_for(cells[2], "stacking", event_id="C"),
    )
    ids = list(InboxEntry.objects.order_by("id").values_list("id", flat=True))
    counts = worker.process_entries(ids)
    assert (counts["applied"], counts["retry"]) == (2, 1)
    refused = InboxEntry.objects.get(event_id="B")
    assert (refused.status, refused.reason_code, refused.run_id) == ("pending", "retrying", None)
    assert "poisoned measurement" in refused.reason
    # Nothing of B is written; A and C are whole.
    assert not ProcessRun.objects.filter(cell=cells[1]).exists()
    assert not Measurement.objects.filter(value=POISON).exists()
    for cell in (cells[0], cells[2]):
        run = ProcessRun.objects.get(cell=cell)
        assert run.measurements.count() == len(result_for(cell, "stacking")["measurements"])
    assert Batch.objects.get(pk=cells[0].batch_id).status == "in_progress"


def test_a_row_the_database_keeps_refusing_is_rejected_after_the_retries(
    station_client, cells, result_for, refuse_poisoned_measurements
):
    station_client("PR-STK-1").post_results(poisoned(result_for(cells[0], "stacking")))
    row = InboxEntry.objects.get()
    for _ in range(worker.MAX_RETRIES_AFTER_ERROR - 1):
        assert worker.process_entries([row.pk])["retry"] == 1
    assert worker.process_entries([row.pk])["rejected"] == 1
    row.refresh_from_db()
    assert (row.status, row.reason_code) == ("rejected", "processing_error")
    assert row.attempts == worker.MAX_RETRIES_AFTER_ERROR
    assert not ProcessRun.objects.exists()


def test_a_row_refused_once_applies_when_the_database_accepts_it_again(
    station_client, cells, result_for, refuse_poisoned_measurements
):
    station_client("PR-STK-1").post_results(poisoned(result_for(cells[0], "stacking")))
    row = InboxEntry.objects.get()
    assert worker.process_entries([row.pk])["retry"] == 1
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER test_refuse_poison ON batches_measurement")
    assert worker.process_entries([row.pk])["applied"] == 1
    assert Measurement.objects.filter(value=POISON, run__cell=cells[0]).exists()


def test_a_task_locks_only_inbox_rows_and_cells_never_the_stations(
    station_client, cells, result_for
):
    # Intake commits check each new row's station key: a worker holding station rows FOR UPDATE
    # (which a lock through a join does) would stall every station's requests.
    stacker = station_client("PR-STK-1")
    for cell in cells[:3]:
        stacker.post_results(result_for(cell, "stacking"))
    first = InboxEntry.objects.order_by("id").first()
    with CaptureQueriesContext(connection) as queries:
        assert worker.process_entries([first.pk])["applied"] == 3
    locking = [q["sql"] for q in queries.captured_queries if "FOR UPDATE" in q["sql"]]
    assert locking, "the task locks its rows"
    for sql in locking:
        assert re.search(r'FOR UPDATE OF "batches_(inboxentry|cell|batch)"', sql) or (
            "JOIN" not in sql
        ), sql


def test_a_wake_up_task_that_cannot_take_all_fresh_rows_wakes_another(
    station_client, cells, result_for, settings, django_capture_on_commit_callbacks
):
    settings.INGEST_TASK_CHUNK = 2
    stacker = station_client("PR-STK-1")
    for cell in cells[:3]:
        stacker.post_results(result_for(cell, "stacking"))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        counts = worker.process_entries([], line_code="proto")
    assert counts["applied"] == 2  # a chunk's worth, taken along
    assert len(callbacks) == 1  # the wake-up for the row it left
    assert InboxEntry.objects.filter(status="pending").count() == 1
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert worker.process_entries([], line_code="proto")["applied"] == 1
    assert callbacks == []  # it took them all: no further wake-up


def test_a_row_received_months_ago_is_left_to_its_own_task_which_applies_it(
    station_client, cells, result_for
):
    """Taking rows along looks in the recent months' partitions only; a fresh row in an older
    one (received before a long stop, say) is applied by its own task, which finds it there."""
    stacker = station_client("PR-STK-1")
    for cell in cells[:2]:
        stacker.post_results(result_for(cell, "stacking"))
    recent, old = InboxEntry.objects.order_by("id").values_list("id", flat=True)
    long_ago = partitions.recent_months(timezone.now())[0] - timedelta(days=40)
    InboxEntry.objects.filter(pk=old).update(received_at=long_ago, occurred_at=long_ago)

    assert worker.process_entries([recent])["applied"] == 1
    assert InboxEntry.objects.get(pk=old).status == "pending"
    assert worker.process_entries([old])["applied"] == 1
    assert ProcessRun.objects.filter(cell__in=cells[:2]).count() == 2
