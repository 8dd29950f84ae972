"""The OPC UA connector: equipment that exposes its results as OPC UA nodes, into the one intake.

`python manage.py opcua_connector` reads settings.OPCUA_CONFIG (or --config), a JSON file:

    {"stations": [{
        "station": "PR-PRS-1",                         the MES station code
        "endpoint": "opc.tcp://press-1.plant:4840/",
        "trigger": "ns=2;s=Press.ResultCounter",       changes once per finished cell
        "cell": "ns=2;s=Press.CellSerial",
        "measurements": {"ns=2;s=Press.PeakPressure": "peak_pressure_mpa", ...},
        "verdict": "ns=2;s=Press.Verdict",             optional: "pass"/"fail" or a boolean (pass)
        "equipment": "ns=2;s=Press.CycleId",           optional
        "username": "...", "password": "...",          optional
        "publishing_interval_ms": 100                  optional
    }, ...]}

Equipment that announces each finished cell as an OPC UA event says instead
`"event_source": "ns=2;s=Stacker"` (the emitting object) and `"event_type": "ns=2;i=1001"`
(its event type), and `cell`, `measurements` (keys), `verdict` and `equipment` then name the
event's fields (e.g. "CellSerial", {"LayerCount": "layer_count"}); the event's Time is its
timestamp. An event carries its values with it, so nothing is read afterwards; events are not
replayed after a reconnect, so one sent while the connector is away is not received.

For each station in trigger mode it subscribes to data changes of the trigger node. On each change it reads the
cell, measurement, verdict and equipment nodes in one Read request (the equipment writes them
before it moves the trigger) and hands the result to stations.intake.accept_results, as the
HTTP API does. The result's event_id and occurred_at come from the trigger value's source
timestamp (the equipment's clock): a reconnect, whose subscription first reports the trigger's
current value, hands the same event again, a duplicate, never a second result. A trigger with
no cell serial (a server just started) is no result. Connections are retried with backoff (1 s
doubling to 30 s); a result that cannot be stored while the database is away is retried, not
dropped.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from asgiref.sync import sync_to_async
from django.db import close_old_connections, connection

from core.api import DATABASE_UNAVAILABLE
from core.errors import DomainError
from lines.models import Station
from stations import intake
from stations.schema import decode_results

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StationNodes:
    station: str
    endpoint: str
    cell: str
    measurements: dict[str, str]
    trigger: str | None = None
    event_source: str | None = None
    event_type: str | None = None
    verdict: str | None = None
    equipment: str | None = None
    username: str | None = None
    password: str | None = None
    publishing_interval_ms: int = 100


def load_config(path: str | Path) -> list[StationNodes]:
    """The stations of a connector configuration file; ValueError naming what is wrong."""
    try:
        document = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"Cannot read the OPC UA configuration {path}: {error}") from None
    entries = document.get("stations") if isinstance(document, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"{path}: expected {{'stations': [...]}} with at least one station.")
    stations = []
    for index, entry in enumerate(entries):
        try:
            stations.append(StationNodes(**entry))
        except TypeError as error:
            raise ValueError(f"{path}: station {index}: {error}") from None
        if not (entry.get("measurements") and isinstance(entry["measurements"], dict)):
            raise ValueError(f"{path}: station {index}: measurements maps node ids to names.")
        if bool(entry.get("trigger")) == bool(entry.get("event_source")):
            raise ValueError(f"{path}: station {index}: give either trigger or event_source.")
    return stations


def event_id(station: str, source_timestamp: datetime) -> str:
    """The same for every notification of one trigger change, whichever connection carried it."""
    return f"opcua-{station}-{source_timestamp.astimezone(UTC):%Y%m%dT%H%M%S.%fZ}"


def _verdict(value: Any) -> str | None:
    if isinstance(value, bool):
        return "pass" if value else "fail"
    if isinstance(value, str) and value.lower() in ("pass", "fail"):
        return value.lower()
    return None


def result_from(config: StationNodes, at: datetime, values: dict[str, Any]) -> dict[str, Any]:
    """A station result (API.md RESULT) from the nodes' values read at a trigger change."""
    result: dict[str, Any] = {
        "event_id": event_id(config.station, at),
        "cell": values["cell"],
        "occurred_at": at.astimezone(UTC).isoformat(),
        "measurements": {
            name: values[node]
            for node, name in config.measurements.items()
            if isinstance(values.get(node), int | float) and not isinstance(values[node], bool)
        },
    }
    if config.verdict and (verdict := _verdict(values.get("verdict"))):
        result["verdict"] = verdict
    if config.equipment and values.get("equipment"):
        result["equipment"] = str(values["equipment"])
    return result


def store(station_code: str, result: dict[str, Any]) -> str:
    """Hand one result to the intake (its own transaction); what became of it, for the log.
    Raises the database's errors (the caller retries)."""
    try:
        station = Station.objects.select_related("line").get(code=station_code)
        accepted = intake.accept_results(
            station, decode_results(json.dumps({"results": [result]}).encode())
        )
    except Station.DoesNotExist:
        return f"refused: no station {station_code}"
    except DomainError as error:
        return f"refused: {error.code} {error.detail} {error.errors}"
    finally:
        close_old_connections()
    return "duplicate" if accepted.duplicates else "accepted"


@dataclass
class Counts:
    results: dict[str, int] = field(default_factory=dict)

    def add(self, outcome: str) -> None:
        key = outcome.split(":")[0]
        self.results[key] = self.results.get(key, 0) + 1


class StationConnector:
    """One station's server: connect, subscribe, turn trigger changes or events into results."""

    def __init__(self, config: StationNodes) -> None:
        self.config = config
        # (trigger value, its source timestamp) or (event, None)
        self.changes: asyncio.Queue[tuple[Any, datetime | None]] = asyncio.Queue()
        self.counts = Counts()

    # asyncua calls these for every notification of the subscription.
    def datachange_notification(self, node: Any, value: Any, data: Any) -> None:
        self.changes.put_nowait((value, data.monitored_item.Value.SourceTimestamp))

    def event_notification(self, event: Any) -> None:
        self.changes.put_nowait((event, None))

    async def run(self, stop: asyncio.Event) -> None:
        from asyncua import Client

        delay = 1.0
        while not stop.is_set():
            client = Client(self.config.endpoint, timeout=10)
            if self.config.username:
                client.set_user(self.config.username)
                client.set_password(self.config.password or "")
            # What the last connection queued is read afresh: its subscription reports the
            # trigger's current value first.
            while not self.changes.empty():
                self.changes.get_nowait()
            try:
                async with client:
                    subscription = await client.create_subscription(
                        self.config.publishing_interval_ms, self
                    )
                    if self.config.trigger:
                        await subscription.subscribe_data_change(
                            client.get_node(self.config.trigger)
                        )
                    else:
                        await subscription.subscribe_events(
                            client.get_node(self.config.event_source),
                            client.get_node(self.config.event_type or "i=2041"),
                        )
                    logger.info(
                        "OPC UA %s: subscribed at %s", self.config.station, self.config.endpoint
                    )
                    delay = 1.0
                    await self._consume(client, stop)
            # Refused, reset, timed out, or a service fault (a Bad... status): the server
            # restarts or the network is down; whatever it was, connect afresh after a pause.
            except Exception as error:
                logger.warning("OPC UA %s: %r; again in %.0f s", self.config.station, error, delay)
            try:
                await asyncio.wait_for(stop.wait(), timeout=delay)
            except TimeoutError:
                pass
            delay = min(delay * 2, 30.0)

    async def _consume(self, client: Any, stop: asyncio.Event) -> None:
        names = {"cell": self.config.cell, **{n: n for n in self.config.measurements}}
        if self.config.verdict:
            names["verdict"] = self.config.verdict
        if self.config.equipment:
            names["equipment"] = self.config.equipment
        keys = list(names)
        handles = [client.get_node(names[k]) for k in keys] if self.config.trigger else []
        while not stop.is_set():
            try:
                change, at = await asyncio.wait_for(self.changes.get(), timeout=1.0)
            except TimeoutError:
                await client.check_connection()  # raises once the server is gone
                continue
            if self.config.trigger:
                if change is None or at is None:
                    logger.info("OPC UA %s: trigger at rest", self.config.station)
                    continue
                values = dict(zip(keys, await client.read_values(handles), strict=True))
            else:
                at = getattr(change, "Time", None)
                values = {key: getattr(change, names[key], None) for key in keys}
            if not values.get("cell") or at is None:
                # A trigger at rest: no cell has finished since the server started.
                logger.info("OPC UA %s: trigger at rest", self.config.station)
                continue
            if at.tzinfo is None:
                at = at.replace(tzinfo=UTC)  # OPC UA times are UTC
            result = result_from(self.config, at, values)
            outcome = await self._store(result)
            self.counts.add(outcome)
            logger.info("OPC UA %s: %s %s", self.config.station, result["event_id"], outcome)

    async def _store(self, result: dict[str, Any]) -> str:
        delay = 1.0
        while True:
            try:
                return await sync_to_async(store, thread_sensitive=True)(
                    self.config.station, result
                )
            except DATABASE_UNAVAILABLE as error:
                logger.error("Database unavailable (%s); result %s kept", error, result["event_id"])
                await sync_to_async(connection.close, thread_sensitive=True)()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)


async def run_connectors(configs: list[StationNodes], stop: asyncio.Event) -> None:
    await asyncio.gather(*(StationConnector(c).run(stop) for c in configs))
