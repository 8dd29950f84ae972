"""An excursion counted while a worker applies a step that ran during it: each transaction
misses the other's uncommitted rows, and the gathering after the count's commit, which waits for
the worker's transaction, still holds the cell. Real transactions on two connections."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.db import close_old_connections, connection

from batches import hooks
from batches.models import Hold
from batches.services import StepResult, create_batch, record_step
from demo.demo_data import READINGS
from environment.intake import accept_readings
from lines.models import CellDesign, Excursion, Line, Route, Station

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


def dew(seconds: int, value: float) -> dict:
    return {
        "sensor": "DP-1",
        "at": (T0 + timedelta(seconds=seconds)).isoformat(),
        "dew_point_c": value,
    }


def waiting_for_an_advisory_lock() -> bool:
    with connection.cursor() as cursor:
        # This database's only: another test run (an xdist worker) may wait on one of its own.
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        return cursor.fetchone()[0] > 0


def wait_for(check, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.mark.django_db(transaction=True)
def test_a_step_applied_while_the_excursion_is_counted_is_held(plant, line_engineer):
    import random

    line = Line.objects.get(code="proto")
    batch = create_batch(
        line=line,
        design=CellDesign.objects.get(code="SSB-5AH-P1"),
        route=Route.objects.get(line=line, code="std"),
        quantity=1,
        by=line_engineer,
    )
    cell = batch.cells.get()
    stacker = Station.objects.get(code="PR-STK-1")
    # Dry, then wet from 200 s on: not yet an excursion (the readings that count come later).
    accept_readings("proto-dry-room", {"readings": [dew(s, -55.0) for s in range(0, 200, 10)]})

    stepped, release = threading.Event(), threading.Event()

    def pause_after_the_rules_read(step):
        if step.run.cell_id == cell.pk:
            stepped.set()
            release.wait(30)
        return None

    hooks.on_after_step(pause_after_the_rules_read)
    errors: list[BaseException] = []

    def apply_the_step() -> None:
        try:
            data = READINGS["stacking"](batch.design, random.Random(cell.serial), upset="")
            result = StepResult(
                occurred_at=T0 + timedelta(seconds=250), measurements=data["measurements"]
            )
            record_step(cell, stacker, result, by="station:PR-STK-1")
        except BaseException as error:  # noqa: B036 (reported to the test's thread)
            errors.append(error)
        finally:
            close_old_connections()
            connection.close()

    def count_the_excursion() -> None:
        try:
            accept_readings(
                "proto-dry-room",
                {"readings": [dew(s, -30.0) for s in range(200, 330, 10)] + [dew(330, -55.0)]},
            )
        except BaseException as error:  # noqa: B036
            errors.append(error)
        finally:
            connection.close()

    worker = threading.Thread(target=apply_the_step)
    try:
        worker.start()
        assert stepped.wait(20), "the step did not reach the hold rules"
        readings = threading.Thread(target=count_the_excursion)
        readings.start()
        # The count is committed; its gathering again waits for the worker's transaction.
        wait_for(
            lambda: Excursion.objects.filter(counted_at__isnull=False).exists(),
            "the excursion to count",
        )
        wait_for(waiting_for_an_advisory_lock, "the gathering to wait for the step")
        assert not Hold.objects.filter(scope=Hold.Scope.EXCURSION).exists()
        release.set()
        worker.join(30)
        readings.join(30)
    finally:
        release.set()
        hooks._after_step.remove(pause_after_the_rules_read)
    assert errors == []
    hold = Hold.objects.get(scope=Hold.Scope.EXCURSION)
    assert [c.serial for c in hold.cells.all()] == [cell.serial]
