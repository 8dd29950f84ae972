"""The MQTT bridge against the real Mosquitto and real Celery workers: results and state flow
through the broker into the inbox and are applied; refusals and malformed messages are replied
to and write nothing; the bridge killed mid-burst, or the broker restarted, loses nothing and
doubles nothing."""

from __future__ import annotations

import io
import threading
import time
from collections import Counter
from datetime import timedelta

import psycopg
import pytest
from django.core.management import call_command
from django.db.models import Count
from django.utils import timezone

from batches.models import Batch, Hold, ProcessRun
from batches.services import StepResult, create_batch, record_step
from demo.demo_data import nominal_stacking_readings
from environment.models import Reading
from lines.models import CellDesign, Excursion, Line, Route, Station, StationStateChange
from stations import bridge_health
from stations.models import InboxEntry, StationToken
from stations.services import issue_station_token, revoke_station_token
from tests import processes
from tests.stations.mqtt_support import (
    BridgeProcess,
    EmbeddedBroker,
    Equipment,
    Mosquitto,
    shared_broker_url,
)

pytestmark = [pytest.mark.processes, pytest.mark.django_db(transaction=True)]

STACKER = "PR-STK-1"


def make_batch(quantity: int) -> Batch:
    line = Line.objects.get(code="proto")
    return create_batch(
        line=line,
        design=CellDesign.objects.get(code="SSB-5AH-P1"),
        route=Route.objects.get(line=line, code="std"),
        quantity=quantity,
        by="test",
    )


def stacking_result(serial: str, design: CellDesign, **extra) -> dict:
    return {
        "event_id": f"S-{serial}",
        "cell": serial,
        "occurred_at": timezone.now().isoformat(),
        "measurements": nominal_stacking_readings(design),
        **extra,
    }


@pytest.fixture
def stack(tmp_path):
    stack = processes.Stack(processes.shared_broker_url(), tmp_path)
    yield stack
    stack.stop()


@pytest.fixture
def bridges(stack):
    started: list[BridgeProcess] = []
    peers: list[Equipment] = []

    def start(url: str, **kwargs) -> tuple[BridgeProcess, Equipment]:
        bridge = BridgeProcess(stack, url, **kwargs)
        started.append(bridge)
        bridge.start()
        equipment = Equipment(url, bridge.root)
        peers.append(equipment)
        return bridge, equipment

    yield start
    for equipment in peers:
        equipment.close()
    for bridge in started:
        bridge.stop()


def wait_inbox(n: int, timeout: float = 60, **filters) -> None:
    processes.wait_for(
        lambda: InboxEntry.objects.filter(**filters).count() >= n,
        timeout=timeout,
        what=f"{n} inbox rows {filters}",
    )


def test_results_and_state_flow_through_the_broker_and_are_applied(plant, stack, bridges):
    stack.start_worker()
    batch = make_batch(3)
    serials = list(batch.cells.order_by("position").values_list("serial", flat=True))
    bridge, equipment = bridges(shared_broker_url())

    first = [stacking_result(s, batch.design) for s in serials[:2]]
    equipment.publish(STACKER, "results", {"results": first})
    # The same message again (equipment that missed the reply): duplicates, nothing new.
    equipment.publish(STACKER, "results", {"results": first})
    equipment.publish(
        STACKER, "state", {"state": "down", "reason": "jam", "occurred_at": "2026-01-05T09:00:00Z"}
    )
    replies = equipment.wait_replies(STACKER, 3)
    assert replies[0] == {"accepted": 2, "duplicates": 0}
    assert replies[1] == {"accepted": 0, "duplicates": 2}
    assert replies[2]["state"] == "down"

    processes.wait_for(
        lambda: InboxEntry.objects.filter(status="processed").count() == 2,
        timeout=60,
        what="both results applied",
    )
    assert set(ProcessRun.objects.values_list("cell__serial", flat=True)) == set(serials[:2])
    assert InboxEntry.objects.count() == 2
    change = StationStateChange.objects.get(station__code=STACKER)
    assert (change.state, change.reason) == ("down", "jam")
    assert change.occurred_at.isoformat() == "2026-01-05T09:00:00+00:00"

    processes.wait_for(
        lambda: bridge_health.read()["counts"].get("accepted") == 3,
        timeout=10,
        what="the heartbeat to count the messages",
    )
    health = bridge_health.read()
    assert health["connected"] is True
    assert health["last_message_at"] is not None


def test_the_demos_embedded_broker_carries_results_and_state(plant, stack, bridges, tmp_path):
    """Without MQTT_URL the demo runs amqtt, which speaks MQTT 3.1.1 only: the bridge keeps its
    session there with clean_session off."""
    broker = EmbeddedBroker(tmp_path)
    broker.start()
    try:
        batch = make_batch(1)
        serial = batch.cells.get().serial
        bridge, equipment = bridges(broker.url, protocol="3.1.1")
        equipment.publish(STACKER, "results", {"results": [stacking_result(serial, batch.design)]})
        equipment.publish(STACKER, "state", {"state": "running", "reason": "shift start"})
        replies = equipment.wait_replies(STACKER, 2)
        assert replies[0] == {"accepted": 1, "duplicates": 0}
        assert replies[1]["state"] == "running"
        assert list(InboxEntry.objects.values_list("event_id", flat=True)) == [f"S-{serial}"]
        assert Station.objects.get(code=STACKER).state == "running"
    finally:
        broker.stop()


def test_refusals_and_malformed_messages_are_replied_and_write_nothing(plant, stack, bridges):
    batch = make_batch(1)
    serial = batch.cells.get().serial
    revoked = Station.objects.get(code="PR-PRS-1")
    issue_station_token(revoked, by="test")
    for token in revoked.tokens.all():
        revoke_station_token(token, by="test")
    bridge, equipment = bridges(shared_broker_url())

    equipment.publish(
        "NO-SUCH-STATION", "results", {"results": [stacking_result(serial, batch.design)]}
    )
    equipment.publish("PR-PRS-1", "results", {"results": [stacking_result(serial, batch.design)]})
    equipment.publish("PR-PRS-1", "state", {"state": "running"})
    equipment.publish(STACKER, "results", b"{not json")
    equipment.publish(STACKER, "results", {"results": [{"event_id": "x", "cell": serial}]})
    equipment.publish(STACKER, "state", {"state": "exploded"})
    equipment.publish(STACKER, "state", b"\xff\xfe")
    equipment.publish(STACKER, "results", b" " * (16 * 1024 * 1024 + 1))
    # Acknowledged, not redelivered forever: the next message is served after them.
    equipment.publish(STACKER, "results", {"results": [stacking_result(serial, batch.design)]})

    unknown = equipment.wait_replies("NO-SUCH-STATION", 1)
    assert unknown[0]["code"] == "unknown_station"
    assert [r["code"] for r in equipment.wait_replies("PR-PRS-1", 2)] == ["not_authenticated"] * 2
    stacker = equipment.wait_replies(STACKER, 6)
    assert [r.get("code") for r in stacker] == [
        "invalid",
        "invalid",
        "invalid",
        "invalid",
        "payload_too_large",
        None,
    ]
    assert "occurred_at" in stacker[1]["errors"]["results"]["0"]
    assert "state" in stacker[2]["errors"]
    assert stacker[5] == {"accepted": 1, "duplicates": 0}

    assert list(InboxEntry.objects.values_list("station__code", "event_id")) == [
        (STACKER, f"S-{serial}")
    ]
    assert not StationStateChange.objects.exists()
    assert Station.objects.get(code="PR-PRS-1").state == "idle"
    assert StationToken.objects.filter(station=revoked, revoked_at__isnull=True).count() == 0
    processes.wait_for(
        lambda: bridge_health.read()["counts"].get("accepted") == 1,
        timeout=10,
        what="the heartbeat to count the messages",
    )
    counts = bridge_health.read()["counts"]
    assert (counts["refused"], counts["accepted"]) == (8, 1)


def test_a_message_is_acknowledged_only_after_its_rows_are_committed(plant, stack, bridges):
    """The bridge is killed while the intake waits on a locked inbox: the message was received
    but must not have been acknowledged, so the broker gives it to the restarted bridge."""
    batch = make_batch(1)
    serial = batch.cells.get().serial
    bridge, equipment = bridges(shared_broker_url())
    with psycopg.connect(processes.test_database_url(), autocommit=False) as lock:
        lock.execute(f"LOCK TABLE {InboxEntry._meta.db_table} IN EXCLUSIVE MODE")

        def waiting_on_lock() -> bool:
            lock.execute("SELECT pg_stat_clear_snapshot()")  # else read once per transaction
            row = lock.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND query LIKE '%INSERT INTO%' AND datname = current_database()"
            ).fetchone()
            return row[0] > 0

        equipment.publish(STACKER, "results", {"results": [stacking_result(serial, batch.design)]})
        processes.wait_for(waiting_on_lock, timeout=30, what="the intake blocked on the lock")
        bridge.kill()
        lock.rollback()
    assert not InboxEntry.objects.exists()
    assert equipment.replies_for(STACKER) == []

    bridge.start()
    replies = equipment.wait_replies(STACKER, 1)
    assert replies == [{"accepted": 1, "duplicates": 0}]
    assert list(InboxEntry.objects.values_list("event_id", flat=True)) == [f"S-{serial}"]


BURST = 500


def publish_burst(equipment: Equipment, batch: Batch) -> threading.Thread:
    serials = list(batch.cells.order_by("position").values_list("serial", flat=True))
    design = batch.design

    def send() -> None:
        for serial in serials:
            equipment.publish(STACKER, "results", {"results": [stacking_result(serial, design)]})

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    return sender


def assert_each_once(batch: Batch) -> None:
    expected = {f"S-{s}" for s in batch.cells.values_list("serial", flat=True)}
    rows = Counter(InboxEntry.objects.values_list("event_id", flat=True))
    assert set(rows) == expected
    assert max(rows.values()) == 1

    def applied() -> bool:
        return InboxEntry.objects.filter(status="processed").count() == len(expected)

    processes.wait_for(applied, timeout=180, what="every result applied", every=0.5)
    runs = Counter(
        dict(
            ProcessRun.objects.filter(cell__batch=batch)
            .values("event_id")
            .annotate(n=Count("id"))
            .values_list("event_id", "n")
        )
    )
    assert set(runs) == expected
    assert set(runs.values()) == {1}


def test_nothing_lost_or_doubled_when_the_bridge_is_killed_mid_burst(plant, stack, bridges):
    stack.start_worker()
    batch = make_batch(BURST)
    bridge, equipment = bridges(shared_broker_url())
    sender = publish_burst(equipment, batch)
    wait_inbox(100)
    bridge.kill()
    killed_at = InboxEntry.objects.count()
    assert killed_at < BURST, "the burst ended before the bridge was killed"
    time.sleep(1)  # the burst goes on into the broker's session meanwhile
    bridge.start()
    sender.join(timeout=120)
    wait_inbox(BURST, timeout=120)
    assert_each_once(batch)
    # Every message had a reply (one stored but not acknowledged again later, as a duplicate).
    replies = equipment.wait_replies(STACKER, BURST, timeout=60)
    assert all(r["accepted"] + r["duplicates"] == 1 for r in replies)


def test_nothing_lost_or_doubled_when_the_broker_restarts(plant, stack, bridges, tmp_path):
    stack.start_worker()
    broker = Mosquitto(tmp_path)
    broker.start()
    try:
        batch = make_batch(BURST)
        bridge, equipment = bridges(broker.url)
        sender = publish_burst(equipment, batch)
        wait_inbox(100)
        broker.stop()
        assert InboxEntry.objects.count() < BURST, "the burst ended before the restart"
        time.sleep(2)
        broker.start()
        sender.join(timeout=180)
        wait_inbox(BURST, timeout=120)
        assert_each_once(batch)
        bridge.wait_connected()
        assert bridge_health.read()["counts"]["connections"] >= 2
    finally:
        broker.stop()


def test_the_line_simulator_sends_some_stations_over_mqtt(plant, stack, bridges, settings):
    """With a broker configured, every second station of the line (PR-PRS-1 of PR-FRM-1,
    PR-PRS-1, PR-STK-1) publishes its results and state; the cells still pass every step."""
    stack.start_web()
    stack.start_worker()
    bridge, _ = bridges(shared_broker_url())
    settings.MQTT_URL = bridge.url
    settings.MQTT_TOPIC_ROOT = bridge.root
    settings.MQTT_PROTOCOL = "5"
    out = io.StringIO()
    call_command(
        "simulate_line", "proto", "--cells", "4", "--rate", "50", "--upset-rate", "0",
        "--resend-rate", "1", "--duplicate-rate", "0", "--base-url", stack.base_url,
        "--seed", "7", stdout=out,
    )  # fmt: skip
    processes.wait_for(
        lambda: not InboxEntry.objects.filter(status="pending").exists(),
        timeout=60,
        what="the simulated results to be processed",
    )
    assert "cells finished 4" in out.getvalue(), out.getvalue()
    assert ProcessRun.objects.count() == 12  # 4 cells x 3 steps
    assert (
        ProcessRun.objects.filter(step__station_kind="pressing", curves__name="pressure").count()
        == 4
    )
    # PR-PRS-1 over MQTT: 4 results, each resent under a new event id, and at least the shift's
    # start and end states: 10 messages at least, all accepted.
    processes.wait_for(
        lambda: bridge_health.read()["counts"].get("accepted", 0) >= 10,
        timeout=10,
        what="the bridge to count the press's messages",
    )
    assert bridge_health.read()["counts"].get("refused", 0) == 0
    press_states = StationStateChange.objects.filter(station__code="PR-PRS-1")
    assert set(press_states.values_list("reason", flat=True)) >= {"shift start", "simulation ended"}


def test_dry_room_readings_flow_through_the_broker_and_an_excursion_holds(
    plant, stack, bridges, line_engineer
):
    """A dew-point sensor on MQTT: its readings land in the zone's record, judged by their own
    times, and a crossing longer than the zone tolerates holds the cells stacked during it."""
    batch = make_batch(2)
    inside, outside = batch.cells.order_by("position")
    t0 = timezone.now().replace(microsecond=0) - timedelta(hours=1)
    stacker = Station.objects.get(code=STACKER)
    for cell, at in (
        (inside, t0 + timedelta(seconds=60)),
        (outside, t0 - timedelta(minutes=30)),
    ):
        record_step(
            cell,
            stacker,
            StepResult(occurred_at=at, measurements=nominal_stacking_readings(batch.design)),
            by="test",
        )
    bridge, equipment = bridges(shared_broker_url())

    def reading(seconds: int, dew_point: float) -> dict:
        at = t0 + timedelta(seconds=seconds)
        return {"sensor": "DP-MQTT", "at": at.isoformat(), "dew_point_c": dew_point}

    # Out of order, one message per reading, as a gateway that buffered them would send.
    for seconds, value in ((0, -55.0), (150, -55.0), (10, -30.0), (120, -32.0), (90, -31.0)):
        equipment.publish("env/proto-dry-room", "readings", reading(seconds, value))
    replies = equipment.wait_replies("env/proto-dry-room", 5)
    assert sum(r["accepted"] for r in replies) == 5

    assert Reading.objects.filter(sensor="DP-MQTT").count() == 5
    excursion = Excursion.objects.get(sensor="DP-MQTT")
    assert (excursion.started_at, excursion.ended_at) == (
        t0 + timedelta(seconds=10),
        t0 + timedelta(seconds=150),
    )
    assert excursion.counted_at is not None and excursion.peak == -30.0
    held = set(Hold.objects.filter(scope="excursion").values_list("cells__serial", flat=True))
    assert held == {inside.serial}
