"""A queue per line (INGEST_QUEUE_PER_LINE): a burst of results on one line does not hold up the
other line's track-in path. Real gunicorn, Celery workers and Redis; the order in which the inbox
rows are applied is what is checked, never how long it took.

The contrast: on one shared queue, the other line's result is applied only once the burst's
tasks ahead of it have all started.
"""

from __future__ import annotations

import pytest
import redis
import yaml
from django.utils import timezone

from batches.models import Batch
from batches.services import create_batch
from demo.management.commands.seed_demo import LINES
from demo.station_http import StationHTTP
from lines.models import CellDesign, Line, Route, Station
from stations.models import InboxEntry
from stations.services import issue_station_token
from tests import processes
from tests.stations.test_fault_tolerance import stacking_result

BURST = 4000  # proto's results: tens of tasks, so its worker is busy for many seconds
PER_REQUEST = 1000
CHUNK = 50  # INGEST_TASK_CHUNK of the Stack: at most this many rows per task
LINE_QUEUES = ("ingest-proto", "ingest-yokohama")


class LineStack(processes.Stack):
    """The Stack with workers that consume only the queues they are given, as in
    docker-compose, and no beat (no sweep): every row is applied by the task the intake sent."""

    def start_on(self, *queues: str) -> None:
        """gunicorn and a worker per queue, started side by side."""
        for queue in queues:
            args = [str(processes.BIN / "celery"), "-A", "mes", "worker", "-Q", queue,
                    "--concurrency", "2", "--pool", "prefork", "--hostname", f"{queue}@%h",
                    "--loglevel", "WARNING", "--without-gossip", "--without-mingle"]  # fmt: skip
            self.workers.append(self._spawn(args, f"worker-{queue}.log"))
        self.start_web()
        for worker in self.workers:
            # Ready when the pool's children are up (prefork forks them after connecting).
            processes.wait_for(
                lambda w=worker: len(self.children(w)) >= 2, timeout=60, what="celery worker"
            )


@pytest.fixture
def stack(plant, tmp_path):
    broker_url = processes.shared_broker_url()
    # The line queues are named by the line alone, not by the test: whatever a run interrupted
    # left in them on this Redis must not be taken for this run's tasks.
    broker = redis.Redis.from_url(broker_url)
    broker.delete(*LINE_QUEUES)
    stack = LineStack(broker_url, tmp_path)
    stack.env["INGEST_TASK_CHUNK"] = str(CHUNK)
    yield stack
    stack.stop()
    broker.delete(*LINE_QUEUES)  # the burst's tasks that were not run


def batch_on(line_code: str, route_code: str, design_code: str, quantity: int) -> Batch:
    line = Line.objects.get(code=line_code)
    return create_batch(
        line=line,
        design=CellDesign.objects.get(code=design_code),
        route=Route.objects.get(line=line, code=route_code),
        quantity=quantity,
        by="test",
    )


def stacking_results(batch: Batch) -> list[dict]:
    now = timezone.now().isoformat()
    serials = batch.cells.order_by("position").values_list("serial", flat=True)
    return [stacking_result(serial, now, batch.design) for serial in serials]


def post(stack: processes.Stack, station_code: str, results: list[dict]) -> None:
    token = issue_station_token(Station.objects.get(code=station_code), by="test")
    client = StationHTTP(stack.base_url, token)
    for start in range(0, len(results), PER_REQUEST):
        reply = client.post_results(results[start : start + PER_REQUEST])
        assert reply.status == 202, (reply.status, reply.body, stack.logs())


def proto_pending() -> int:
    return InboxEntry.objects.filter(station__line__code="proto", status="pending").count()


def burst_then_one_result(stack: processes.Stack) -> InboxEntry:
    """proto's burst, then (proto's worker busy with it) one result from yokohama: its inbox row
    once applied."""
    burst = batch_on("proto", "std", "SSB-5AH-P1", BURST)
    single = batch_on("yokohama", "pilot", "SSB-20AH-Y1", 1)
    post(stack, "PR-STK-1", stacking_results(burst))
    # What follows means something only while the burst is still being worked through.
    assert proto_pending() > 2 * CHUNK, "the burst was applied before yokohama's result was sent"
    post(stack, "YK-STK-1", stacking_results(single))
    entry = InboxEntry.objects.get(station__code="YK-STK-1")
    processes.wait_for(
        lambda: InboxEntry.objects.filter(pk=entry.pk, status="processed").exists(),
        timeout=120,
        what="yokohama's result applied",
        every=0.05,
    )
    entry.refresh_from_db()
    assert entry.run is not None
    cell = single.cells.get()
    assert (cell.status, cell.next_step.station_kind) == ("in_process", "pressing")
    return entry


@pytest.mark.processes
@pytest.mark.django_db(transaction=True)
def test_a_burst_on_one_line_leaves_the_other_lines_track_in_alone(stack):
    stack.env["INGEST_QUEUE_PER_LINE"] = "1"
    stack.start_on(*LINE_QUEUES)

    burst_then_one_result(stack)

    # yokohama's result was applied while proto's worker was still busy with the burst.
    assert proto_pending() > 0


@pytest.mark.processes
@pytest.mark.django_db(transaction=True)
def test_on_one_shared_queue_the_other_line_waits_behind_the_burst(stack):
    stack.env["INGEST_QUEUE_PER_LINE"] = "0"
    stack.start_on(stack.env["CELERY_TASK_DEFAULT_QUEUE"])

    entry = burst_then_one_result(stack)

    processes.wait_for(lambda: proto_pending() == 0, timeout=300, what="the burst applied")
    # Applied after every task of the burst had started: only the one running beside it (two
    # pool processes) can have applied its rows later.
    later = InboxEntry.objects.filter(
        station__line__code="proto", processed_at__gt=entry.processed_at
    ).count()
    assert later <= CHUNK, later


def test_compose_runs_a_worker_on_every_lines_queue_and_one_on_the_default_queue():
    services = yaml.safe_load((processes.ROOT / "docker-compose.yml").read_text())["services"]
    commands = [service.get("command", []) for service in services.values()]
    workers = [c for c in commands if c[:4] == ["celery", "-A", "mes", "worker"]]
    queues = [c[c.index("-Q") + 1] if "-Q" in c else "default" for c in workers]
    assert sorted(queues) == sorted(["default", *(f"ingest-{line['code']}" for line in LINES)])
    app = [s for s in services.values() if s.get("image") == "pilot-line-mes:latest"]
    assert {s["environment"].get("INGEST_QUEUE_PER_LINE") for s in app} == {"1"}
