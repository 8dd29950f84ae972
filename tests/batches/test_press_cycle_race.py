"""A short and its cycle-mates' pressing results, applied by two real workers at the same time:
no mate escapes the press cycle's hold, whichever worker commits first."""

from __future__ import annotations

import threading
import time

import pytest
from django.db.models import Count
from django.utils import timezone

from batches.models import Hold
from batches.services import create_batch
from demo.demo_data import READINGS
from demo.station_http import StationHTTP
from lines.models import CellDesign, Line, Route, Station
from stations.models import InboxEntry
from stations.services import issue_station_token
from tests import processes
from tests.stations.test_fault_tolerance import stacking_result

CYCLES = 25  # a request of 25 results or more gets a task of its own (stations.dispatch)
MATES = 6  # the mates' tasks (with their pressure curves) run long: the shorts' task fits inside


def _pressing(serial: str, design: CellDesign, cycle: str, *, short: bool) -> dict:
    import random

    data = READINGS["pressing"](design, random.Random(serial))
    return {
        "event_id": f"P-{serial}",
        "cell": serial,
        "occurred_at": timezone.now().isoformat(),
        "measurements": data["measurements"],
        "curves": {} if short else data["curves"],
        "equipment": cycle,
        "defects": ["short"] if short else [],
    }


@pytest.mark.processes
@pytest.mark.django_db(transaction=True)
def test_no_cycle_mate_escapes_a_short_applied_at_the_same_time(plant, tmp_path):
    line = Line.objects.get(code="proto")
    design = CellDesign.objects.get(code="SSB-5AH-P1")
    batch = create_batch(
        line=line,
        design=design,
        route=Route.objects.get(line=line, code="std"),
        quantity=CYCLES * (1 + MATES),
        by="test",
    )
    serials = list(batch.cells.order_by("position").values_list("serial", flat=True))
    cycles = {
        f"race-cycle-{n}": serials[n * (1 + MATES) : (n + 1) * (1 + MATES)] for n in range(CYCLES)
    }
    stack = processes.Stack(processes.shared_broker_url(), tmp_path)
    stack.env["INGEST_PENDING_AFTER_SECONDS"] = "3600"  # every row by the tasks the intake sent
    # Tasks of exactly one request's 25 results: none takes another's rows along, so the shorts
    # and their mates are applied in separate transactions, side by side.
    stack.env["INGEST_TASK_CHUNK"] = str(CYCLES)
    try:
        stack.start_web()
        stack.start_worker()
        stacker = StationHTTP(
            stack.base_url, issue_station_token(Station.objects.get(code="PR-STK-1"), by="test")
        )
        now = timezone.now().isoformat()
        assert (
            stacker.post_results([stacking_result(s, now, design) for s in serials]).status == 202
        )
        processes.wait_for(
            lambda: not InboxEntry.objects.filter(status="pending").exists(),
            timeout=60,
            what="every cell stacked",
        )
        token = issue_station_token(Station.objects.get(code="PR-PRS-1"), by="test")
        shorts = [_pressing(cells[0], design, cycle, short=True) for cycle, cells in cycles.items()]
        mates = [
            _pressing(serial, design, cycle, short=False)
            for cycle, cells in cycles.items()
            for serial in cells[1:]
        ]
        replies: list[int] = []

        def send(body: list[dict], after_s: float) -> None:
            time.sleep(after_s)
            replies.append(StationHTTP(stack.base_url, token).post_results(body).status)

        # The shorts a moment after the mates: their task runs while the mates' are applied.
        requests = [
            threading.Thread(target=send, args=(mates, 0.0)),
            threading.Thread(target=send, args=(shorts, 0.3)),
        ]
        for request in requests:
            request.start()
        for request in requests:
            request.join(timeout=60)
        assert replies == [202, 202]
        processes.wait_for(
            lambda: not InboxEntry.objects.filter(status="pending").exists(),
            timeout=90,
            what="every pressing result applied",
        )
    finally:
        stack.stop()
    assert not InboxEntry.objects.filter(status="rejected").exists()
    holds = Hold.objects.filter(scope=Hold.Scope.PRESS_CYCLE, status=Hold.Status.OPEN)
    per_cycle = dict(holds.values_list("target").annotate(n=Count("id")))
    assert per_cycle == {f"PR-PRS-1:{cycle}": 1 for cycle in cycles}  # one hold a cycle
    for cycle, cells in cycles.items():
        hold = holds.get(target=f"PR-PRS-1:{cycle}")
        assert sorted(hold.cells.values_list("serial", flat=True)) == sorted(cells), cycle
