"""A stream of small requests is applied by few tasks: one queued wake-up task per line takes the
line's fresh rows along. Nothing may be lost to it: a row is seen by a queued task or sends one."""

from __future__ import annotations

import threading
import time

import pytest
from django.db.models import Count
from django.utils import timezone

from batches.models import ProcessRun
from batches.services import create_batch
from demo.station_http import StationHTTP
from lines.models import CellDesign, Line, Route, Station
from stations import dispatch
from stations.models import InboxEntry
from stations.services import issue_station_token
from tests import processes
from tests.stations.test_fault_tolerance import stacking_result


@pytest.fixture
def marks(settings):
    """The wake-up marks on the machine's Redis, under a queue name of this test's own."""
    settings.CELERY_BROKER_URL = processes.shared_broker_url()
    settings.CELERY_TASK_DEFAULT_QUEUE = f"wake-up-test-{time.monotonic_ns()}"
    wake_ups = dispatch.WakeUps()
    yield wake_ups
    for line in ("proto", "yokohama"):
        wake_ups.started(line)


def test_only_one_wake_up_is_claimed_until_the_task_starts(marks):
    assert marks.claim("proto") is True
    assert marks.claim("proto") is False  # queued already: the intake sends nothing
    assert marks.claim("yokohama") is True  # another line has its own
    marks.started("proto")
    assert marks.claim("proto") is True


def test_a_wake_up_mark_expires_so_a_lost_task_costs_seconds_not_results(marks):
    marks.TTL_MS = 300
    assert marks.claim("proto") is True
    time.sleep(0.5)
    assert marks.claim("proto") is True


def test_without_redis_every_request_sends_its_task(settings):
    settings.CELERY_BROKER_URL = "filesystem://"
    wake_ups = dispatch.WakeUps()
    assert wake_ups.claim("proto") and wake_ups.claim("proto")


@pytest.mark.processes
@pytest.mark.django_db(transaction=True)
def test_single_result_requests_from_many_threads_are_all_applied_once(plant, tmp_path):
    line = Line.objects.get(code="proto")
    batch = create_batch(
        line=line,
        design=CellDesign.objects.get(code="SSB-5AH-P1"),
        route=Route.objects.get(line=line, code="std"),
        quantity=400,
        by="test",
    )
    serials = list(batch.cells.order_by("position").values_list("serial", flat=True))
    stack = processes.Stack(processes.shared_broker_url(), tmp_path)
    # No sweep within the test: every row must be applied by the tasks the intake sent.
    stack.env["INGEST_PENDING_AFTER_SECONDS"] = "3600"
    try:
        stack.start_web()
        stack.start_worker()
        token = issue_station_token(Station.objects.get(code="PR-STK-1"), by="test")
        todo = iter(serials)
        lock = threading.Lock()
        statuses: list[int] = []

        def send() -> None:
            client = StationHTTP(stack.base_url, token)
            while True:
                with lock:
                    serial = next(todo, None)
                if serial is None:
                    return
                reply = client.post_results(
                    [stacking_result(serial, timezone.now().isoformat(), batch.design)]
                )
                with lock:
                    statuses.append(reply.status)

        threads = [threading.Thread(target=send) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert statuses == [202] * len(serials)
        processes.wait_for(
            lambda: not InboxEntry.objects.filter(status="pending").exists(),
            timeout=60,
            what="every row processed",
        )
    finally:
        stack.stop()
    runs = dict(
        ProcessRun.objects.filter(cell__batch=batch)
        .values("event_id")
        .annotate(n=Count("id"))
        .values_list("event_id", "n")
    )
    assert set(runs) == {f"S-{serial}" for serial in serials}  # none missing
    assert set(runs.values()) == {1}  # none applied twice
    assert InboxEntry.objects.filter(status="processed").count() == len(serials)
