"""Nothing accepted is lost and nothing is applied twice when a worker process dies, the whole
worker dies, or the broker restarts and forgets every message: real gunicorn, Celery and Redis.

Each test posts a burst of 1,200 results (1,000 stacking results plus 200 pressing results sent
BEFORE their cells' stacking results, so route order is exercised under the fault too), breaks
something mid-burst, and counts by event_id afterwards.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections import Counter

import pytest
from django.db.models import Count
from django.utils import timezone

from batches.models import Batch, ProcessRun
from batches.services import create_batch
from demo.demo_data import nominal_stacking_readings
from demo.station_http import StationHTTP
from lines.models import CellDesign, Line, Route, Station
from stations.models import InboxEntry
from stations.services import issue_station_token
from tests import processes

pytestmark = [pytest.mark.processes, pytest.mark.django_db(transaction=True)]

CELLS = 1000
EARLY_PRESSING = 200
PER_REQUEST = 50


def needs_redis_server() -> None:
    if not (shutil.which("redis-server") and shutil.which("redis-cli")):
        pytest.skip("redis-server/redis-cli are not installed: cannot restart a broker")


@pytest.fixture
def batch(plant) -> Batch:
    line = Line.objects.get(code="proto")
    return create_batch(
        line=line,
        design=CellDesign.objects.get(code="SSB-5AH-P1"),
        route=Route.objects.get(line=line, code="std"),
        quantity=CELLS,
        by="test",
    )


@pytest.fixture
def stack_on(tmp_path):
    stacks: list[processes.Stack] = []

    def start(broker_url: str) -> processes.Stack:
        stack = processes.Stack(broker_url, tmp_path)
        stacks.append(stack)
        stack.start_web()
        stack.start_worker()
        return stack

    yield start
    for stack in stacks:
        stack.stop()


def stacking_result(serial: str, occurred_at: str, design: CellDesign) -> dict:
    return {
        "event_id": f"S-{serial}",
        "cell": serial,
        "occurred_at": occurred_at,
        "measurements": nominal_stacking_readings(design),
    }


def burst(batch: Batch) -> dict[str, list[list[dict]]]:
    """Requests per station: pressing results first for some cells, then every stacking result."""
    serials = list(batch.cells.order_by("position").values_list("serial", flat=True))
    now = timezone.now().isoformat()
    stacking = [stacking_result(serial, now, batch.design) for serial in serials]
    pressing = [
        {
            "event_id": f"P-{serial}",
            "cell": serial,
            "occurred_at": now,
            "equipment": "PR-CIP-1-cycle-1",
            "measurements": {
                "peak_pressure_mpa": 500.0,
                "dwell_s": 300.0,
                "temperature_c": 60.0,
                "thickness_before_um": 6500.0,
                "thickness_after_um": 5500.0,
                "relative_density_pct": 94.0,
            },
        }
        for serial in serials[-EARLY_PRESSING:]
    ]

    def chunks(results: list[dict]) -> list[list[dict]]:
        return [results[i : i + PER_REQUEST] for i in range(0, len(results), PER_REQUEST)]

    return {"PR-PRS-1": chunks(pressing), "PR-STK-1": chunks(stacking)}


class Sender(threading.Thread):
    """Posts the burst as equipment would: in order, retrying until each request is answered."""

    def __init__(self, base_url: str, requests: dict[str, list[list[dict]]]) -> None:
        super().__init__(daemon=True)
        self.clients = {
            code: StationHTTP(
                base_url, issue_station_token(Station.objects.get(code=code), by="test")
            )
            for code in requests
        }
        self.requests = requests
        self.replies: list[tuple[int, dict]] = []
        self.posted = 0

    def run(self) -> None:
        for code, chunks in self.requests.items():
            for results in chunks:
                reply = self.clients[code].post_results(results)
                self.replies.append((reply.status, reply.body))
                self.posted += len(results)
                # A retried request whose first try was stored answers with duplicates: send
                # it once more to show a resend of a whole request is harmless too.
                if self.posted % 400 == 0:
                    again = self.clients[code].post_results(results)
                    self.replies.append((again.status, again.body))


def expected_event_ids(batch: Batch) -> set[str]:
    serials = list(batch.cells.order_by("position").values_list("serial", flat=True))
    return {f"S-{s}" for s in serials} | {f"P-{s}" for s in serials[-EARLY_PRESSING:]}


def assert_all_applied_once(batch: Batch, stack: processes.Stack, sender: Sender) -> None:
    expected = expected_event_ids(batch)
    assert all(status == 202 for status, _ in sender.replies), sender.replies[:3]
    accepted = sum(body["accepted"] for _, body in sender.replies)
    assert accepted == len(expected)  # every result stored once, repeats counted as duplicates

    def all_done() -> bool:
        return not InboxEntry.objects.filter(status=InboxEntry.Status.PENDING).exists()

    try:
        processes.wait_for(all_done, timeout=120, what="every inbox row processed", every=0.5)
    except AssertionError:
        print(stack.logs())
        raise
    statuses = Counter(InboxEntry.objects.values_list("status", flat=True))
    refused = list(
        InboxEntry.objects.exclude(status="processed").values_list("event_id", "reason")[:5]
    )
    assert statuses == {"processed": len(expected)}, (statuses, refused)
    runs = Counter(
        dict(
            ProcessRun.objects.filter(cell__batch=batch)
            .values("event_id")
            .annotate(n=Count("id"))
            .values_list("event_id", "n")
        )
    )
    missing = expected - set(runs)
    applied_twice = {event_id for event_id, n in runs.items() if n > 1}
    assert (len(missing), len(applied_twice)) == (0, 0), (sorted(missing)[:5], applied_twice)
    pressed = batch.cells.filter(next_step__station_kind="formation").count()
    assert pressed == EARLY_PRESSING  # the early pressing results were applied after stacking


def processed_count() -> int:
    return InboxEntry.objects.filter(status=InboxEntry.Status.PROCESSED).count()


def test_nothing_is_lost_when_a_worker_child_is_killed_mid_task(batch, stack_on):
    broker = processes.shared_broker_url()
    stack = stack_on(broker)
    sender = Sender(stack.base_url, burst(batch))
    sender.start()
    processes.wait_for(lambda: processed_count() >= 100, timeout=60, what="processing to start")
    busy = stack.children(stack.workers[0])
    assert busy, "the worker has no pool processes"
    for child in busy:  # every child: whichever holds a task right now dies holding it
        child.kill()
    sender.join(timeout=120)
    assert_all_applied_once(batch, stack, sender)


def test_nothing_is_lost_when_the_whole_worker_is_killed(batch, stack_on):
    broker = processes.shared_broker_url()
    stack = stack_on(broker)
    sender = Sender(stack.base_url, burst(batch))
    sender.start()
    processes.wait_for(lambda: processed_count() >= 100, timeout=60, what="processing to start")
    stack.kill_group(stack.workers[0])  # main process and pool: its unacked tasks are orphaned
    time.sleep(1)
    stack.start_worker()
    sender.join(timeout=120)
    assert_all_applied_once(batch, stack, sender)


def test_nothing_is_lost_when_redis_restarts_mid_burst(batch, stack_on):
    needs_redis_server()
    redis = processes.RedisServer()
    redis.start()
    try:
        stack = stack_on(redis.url)
        sender = Sender(stack.base_url, burst(batch))
        sender.start()
        processes.wait_for(lambda: sender.posted >= 300, timeout=60, what="the burst to start")
        redis.stop()  # every queued message is gone (nothing on disk)
        time.sleep(2)  # requests keep coming: rows are stored, enqueueing fails, sweep recovers
        redis.start()
        sender.join(timeout=120)
        assert_all_applied_once(batch, stack, sender)
    finally:
        redis.stop() if processes.redis_reachable(redis.url) else None
