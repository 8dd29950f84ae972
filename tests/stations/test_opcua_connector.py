"""The OPC UA connector against an asyncua server started here: a press that finishes cells
(writes the cell and its readings, then moves its result counter) feeds the intake; the
connector killed and restarted, or the server restarted, neither doubles nor loses a result."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import threading
from datetime import UTC, datetime

import pytest

from batches.services import create_batch
from lines.models import CellDesign, Line, Route
from stations.models import InboxEntry
from stations.opcua import load_config
from tests import processes

pytestmark = [pytest.mark.processes, pytest.mark.django_db(transaction=True)]

STATION = "PR-STK-1"
NS = "urn:test:stacker"
NODES = {
    "Counter": 0,
    "Cell": "",
    "LayerCount": 0.0,
    "AlignmentUm": 0.0,
    "Verdict": "",
}


class Stacker:
    """An asyncua server in a thread of its own (its own event loop), as equipment runs one."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.endpoint = f"opc.tcp://127.0.0.1:{port}/stacker/"
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = None
        self.nodes: dict = {}
        self.ns = 0

    def call(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=60)

    def start(self) -> None:
        self.call(self._start())

    async def _start(self) -> None:
        from asyncua import Server, ua

        server = Server()
        await server.init()
        server.set_endpoint(self.endpoint)
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        self.ns = await server.register_namespace(NS)
        stacker = await server.nodes.objects.add_object(ua.NodeId("Stacker", self.ns), "Stacker")
        for name, initial in NODES.items():
            node_id = ua.NodeId(f"Stacker.{name}", self.ns)
            self.nodes[name] = await stacker.add_variable(node_id, name, initial)
        # Equipment of the other kind announces each finished cell as an event.
        self.event_type = await server.create_custom_event_type(
            self.ns,
            "CellFinished",
            ua.ObjectIds.BaseEventType,
            [("CellSerial", ua.VariantType.String), ("LayerCount", ua.VariantType.Double)],
        )
        self.events = await server.get_event_generator(self.event_type, stacker)
        self.stacker = stacker
        await server.start()
        self.server = server

    def announce_cell(self, serial: str, layers: float, at: datetime) -> None:
        self.call(self._announce(serial, layers, at))

    async def _announce(self, serial, layers, at) -> None:
        self.events.event.CellSerial = serial
        self.events.event.LayerCount = layers
        await self.events.trigger(at)

    @staticmethod
    async def _cancel_leftovers() -> None:
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def node_id(self, name: str) -> str:
        return f"ns={self.ns};s=Stacker.{name}"

    def finish_cell(self, serial: str, layers: float, alignment: float, at: datetime) -> None:
        self.call(self._finish(serial, layers, alignment, at))

    async def _finish(self, serial, layers, alignment, at) -> None:
        from asyncua import ua

        await self.nodes["Cell"].write_value(serial)
        await self.nodes["LayerCount"].write_value(layers)
        await self.nodes["AlignmentUm"].write_value(alignment)
        await self.nodes["Verdict"].write_value("pass")
        count = await self.nodes["Counter"].read_value()
        # The equipment's own clock stamps the result: the source timestamp.
        value = ua.DataValue(ua.Variant(count + 1, ua.VariantType.Int64), SourceTimestamp=at)
        await self.nodes["Counter"].write_value(value)

    def stop(self) -> None:
        if self.server is not None:
            self.call(self.server.stop())
            self.server = None

    def close(self) -> None:
        self.stop()
        self.call(self._cancel_leftovers())  # sessions' timers the server leaves running
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


@pytest.fixture
def stacker():
    server = Stacker(processes.free_port())
    server.start()
    yield server
    server.close()


class Connector:
    def __init__(self, tmp, config_path) -> None:
        self.tmp = tmp
        self.env = {
            **os.environ,
            "DATABASE_URL": processes.test_database_url(),
            "DATABASE_ROLE": "app",
            "DATABASE_APP_URL": processes.test_database_app_url(),
            "OPCUA_CONFIG": str(config_path),
            "LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
        }
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        log = open(self.tmp / "opcua.log", "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            [str(processes.BIN / "python"), "manage.py", "opcua_connector"],
            cwd=processes.ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

    def log(self) -> str:
        return (self.tmp / "opcua.log").read_text()

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def connector_for(tmp_path):
    started: list[Connector] = []

    def make(entry: dict) -> Connector:
        config = tmp_path / f"opcua-{len(started)}.json"
        config.write_text(json.dumps({"stations": [{"station": STATION, **entry}]}))
        connector = Connector(tmp_path, config)
        started.append(connector)
        return connector

    yield make
    for connector in started:
        connector.stop()


@pytest.fixture
def connector(stacker, connector_for):
    return connector_for(
        {
            "endpoint": stacker.endpoint,
            "trigger": stacker.node_id("Counter"),
            "cell": stacker.node_id("Cell"),
            "measurements": {
                stacker.node_id("LayerCount"): "layer_count",
                stacker.node_id("AlignmentUm"): "alignment_offset_um",
            },
            "verdict": stacker.node_id("Verdict"),
            "publishing_interval_ms": 50,
        }
    )


def wait_rows(n: int, connector: Connector, timeout: float = 60) -> None:
    try:
        processes.wait_for(
            lambda: InboxEntry.objects.count() >= n, timeout=timeout, what=f"{n} inbox rows"
        )
    except AssertionError:
        print(connector.log()[-4000:])
        raise


def test_results_from_opc_ua_nodes_reach_the_intake_once(plant, stacker, connector):
    line = Line.objects.get(code="proto")
    batch = create_batch(
        line=line,
        design=CellDesign.objects.get(code="SSB-5AH-P1"),
        route=Route.objects.get(line=line, code="std"),
        quantity=3,
        by="test",
    )
    first, second, third = batch.cells.order_by("position").values_list("serial", flat=True)
    connector.start()
    # A server at rest (no cell yet) is no result. Its trigger's first report is read before a
    # cell finishes: read after, it would find that cell's nodes already written.
    processes.wait_for(lambda: "trigger at rest" in connector.log(), timeout=60, what="at rest")

    stacker.finish_cell(first, 40.0, 12.5, datetime(2026, 1, 5, 9, 0, 0, 123456, tzinfo=UTC))
    wait_rows(1, connector)
    entry = InboxEntry.objects.get()
    assert entry.event_id == f"opcua-{STATION}-20260105T090000.123456Z"
    assert entry.station.code == STATION
    assert entry.cell_serial == first
    assert entry.occurred_at == datetime(2026, 1, 5, 9, 0, 0, 123456, tzinfo=UTC)
    assert entry.payload["measurements"] == {"layer_count": 40.0, "alignment_offset_um": 12.5}
    assert entry.payload["verdict"] == "pass"

    # Killed and restarted: its new subscription reports the counter's current value first,
    # the same event again: a duplicate, no second row.
    connector.kill()
    connector.start()
    processes.wait_for(lambda: "duplicate" in connector.log(), timeout=60, what="the re-report")
    assert InboxEntry.objects.count() == 1
    # A cell finished while the connector is down arrives once it is back.
    connector.kill()
    stacker.finish_cell(second, 40.0, 8.0, datetime(2026, 1, 5, 9, 5, tzinfo=UTC))
    connector.start()
    wait_rows(2, connector)
    stacker.finish_cell(third, 40.0, 9.0, datetime(2026, 1, 5, 9, 10, tzinfo=UTC))
    wait_rows(3, connector)

    # The server restarts (a power cycle: every node back at rest); the connector reconnects,
    # and reads the trigger at rest again before the next cell finishes (as at the start).
    at_rest = connector.log().count("trigger at rest")
    stacker.stop()
    stacker.start()
    processes.wait_for(
        lambda: connector.log().count("trigger at rest") > at_rest, timeout=90, what="at rest"
    )
    stacker.finish_cell(first + "-again", 40.0, 7.0, datetime(2026, 1, 5, 9, 15, tzinfo=UTC))
    wait_rows(4, connector, timeout=90)

    rows = list(InboxEntry.objects.order_by("occurred_at").values_list("event_id", "cell_serial"))
    assert rows == [
        (f"opcua-{STATION}-20260105T090000.123456Z", first),
        (f"opcua-{STATION}-20260105T090500.000000Z", second),
        (f"opcua-{STATION}-20260105T091000.000000Z", third),
        (f"opcua-{STATION}-20260105T091500.000000Z", first + "-again"),
    ]


def test_results_announced_as_opc_ua_events_reach_the_intake(plant, stacker, connector_for):
    connector = connector_for(
        {
            "endpoint": stacker.endpoint,
            "event_source": f"ns={stacker.ns};s=Stacker",
            "event_type": stacker.event_type.nodeid.to_string(),
            "cell": "CellSerial",
            "measurements": {"LayerCount": "layer_count"},
            "publishing_interval_ms": 50,
        }
    )
    connector.start()
    processes.wait_for(lambda: "subscribed" in connector.log(), timeout=60, what="subscription")
    stacker.announce_cell("EV-CELL-1", 40.0, datetime(2026, 1, 6, 7, 30, 0, 250000, tzinfo=UTC))
    stacker.announce_cell("EV-CELL-2", 41.0, datetime(2026, 1, 6, 7, 31, tzinfo=UTC))
    wait_rows(2, connector)
    rows = list(
        InboxEntry.objects.order_by("occurred_at").values_list(
            "event_id", "cell_serial", "occurred_at", "payload__measurements"
        )
    )
    assert rows == [
        (
            f"opcua-{STATION}-20260106T073000.250000Z",
            "EV-CELL-1",
            datetime(2026, 1, 6, 7, 30, 0, 250000, tzinfo=UTC),
            {"layer_count": 40.0},
        ),
        (
            f"opcua-{STATION}-20260106T073100.000000Z",
            "EV-CELL-2",
            datetime(2026, 1, 6, 7, 31, tzinfo=UTC),
            {"layer_count": 41.0},
        ),
    ]


def test_a_configuration_file_is_checked_before_connecting(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"stations": [{"station": "X", "endpoint": "opc.tcp://h:4840"}]}))
    with pytest.raises(ValueError, match="station 0"):
        load_config(bad)
    neither = {
        "station": "X",
        "endpoint": "opc.tcp://h:4840",
        "cell": "c",
        "measurements": {"m": "n"},
    }
    bad.write_text(json.dumps({"stations": [neither]}))
    with pytest.raises(ValueError, match="either trigger or event_source"):
        load_config(bad)
    both = {**neither, "trigger": "ns=2;s=T", "event_source": "ns=2;s=S"}
    bad.write_text(json.dumps({"stations": [both]}))
    with pytest.raises(ValueError, match="either trigger or event_source"):
        load_config(bad)
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="Cannot read"):
        load_config(bad)
