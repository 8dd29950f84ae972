"""A station's side of plant messaging (API.md "Plant messaging (MQTT)"), as equipment does it.

Equipment that speaks MQTT publishes its results and state to `mes/v1/<CODE>/results|state`
(QoS 1) and reads the answer on `mes/v1/<CODE>/replies`; the track-in interlock and the recipe
stay on HTTP (they are synchronous questions). `StationMQTT` offers StationHTTP's interface, so
the line simulator drives either kind alike; `mix_in_mqtt` turns every second station of a line
into an MQTT one when a broker is configured (settings.MQTT_URL).
"""

from __future__ import annotations

import json
import os
import queue
import threading
import time
import uuid
from typing import Any

from django.conf import settings

from demo.station_http import Reply, StationHTTP

# The HTTP status a reply's error code stands for, so the simulator reads both alike.
STATUS_OF = {
    "invalid": 400,
    "not_authenticated": 401,
    "unknown_station": 404,
    "event_id_reused": 409,
    "payload_too_large": 413,
}
BY_PATH = {"/api/v1/station/results": "results", "/api/v1/station/state": "state"}


class MQTTLink:
    """One broker connection shared by a simulator's MQTT stations; replies routed by station
    (and, under MQTT 5, by the correlation data each request carries)."""

    def __init__(self, url: str, *, root: str, protocol: str, name: str) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        from stations.mqtt import parse_url

        broker = parse_url(url)
        self.root = root
        self.v5 = protocol == "5"
        self.replies: dict[str, queue.Queue[tuple[bytes | None, Any]]] = {}
        self.lock = threading.Lock()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"{name}-{os.getpid()}-{uuid.uuid4().hex[:6]}",
            protocol=mqtt.MQTTv5 if self.v5 else mqtt.MQTTv311,
        )
        if broker.username:
            self.client.username_pw_set(broker.username, broker.password)
        self.client.on_connect = lambda c, *a: c.subscribe(f"{root}/+/replies", qos=1)
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.5, 10)
        self.client.connect_async(broker.host, broker.port, keepalive=30)
        self.client.loop_start()

    def _queue(self, code: str) -> queue.Queue:
        with self.lock:
            return self.replies.setdefault(code, queue.Queue())

    def _on_message(self, client, userdata, message) -> None:
        code = message.topic[len(self.root) + 1 :].split("/")[0]
        correlation = getattr(getattr(message, "properties", None), "CorrelationData", None)
        try:
            body = json.loads(message.payload)
        except ValueError:
            return
        self._queue(code).put((correlation, body))

    def send(self, code: str, kind: str, body: Any, *, timeout: float = 30.0) -> tuple[Any, int]:
        """Publish and wait for the reply; publish again (the same body: the event_id makes it
        harmless) when none comes in time. Returns the reply's body and the attempts made."""
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        replies = self._queue(code)
        correlation = uuid.uuid4().bytes
        properties = None
        if self.v5:
            properties = Properties(PacketTypes.PUBLISH)
            properties.CorrelationData = correlation
        attempts = 0
        while True:
            attempts += 1
            self.client.publish(
                f"{self.root}/{code}/{kind}", json.dumps(body), qos=1, properties=properties
            )
            deadline = time.monotonic() + timeout
            while (left := deadline - time.monotonic()) > 0:
                try:
                    got, reply = replies.get(timeout=left)
                except queue.Empty:
                    break
                if not self.v5 or got == correlation:
                    return reply, attempts  # (3.1.1: one request at a time, so the next one)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class StationMQTT:
    """StationHTTP's interface; results and state over MQTT, the rest over HTTP."""

    def __init__(self, http: StationHTTP, link: MQTTLink, code: str) -> None:
        self.http = http
        self.link = link
        self.code = code
        self.resent = 0

    @property
    def token(self) -> str:
        return self.http.token

    @token.setter
    def token(self, value: str) -> None:
        self.http.token = value

    @property
    def retries(self) -> int:
        return self.http.retries + self.resent

    def request(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Reply:
        kind = BY_PATH.get(path) if method == "POST" else None
        if kind is None:
            return self.http.request(method, path, body, **kwargs)
        started = time.perf_counter()
        reply, attempts = self.link.send(self.code, kind, body)
        self.resent += attempts - 1
        code = reply.get("code") if isinstance(reply, dict) else None
        status = STATUS_OF.get(code, 400) if code else 202
        return Reply(status, reply, time.perf_counter() - started, attempts)

    def post_cycler_file(self, **upload: Any) -> Reply:
        """A raw cycler file is a multipart upload: over HTTP, whatever carries the results."""
        return self.http.post_cycler_file(**upload)

    def get(self, path: str) -> Reply:
        return self.request("GET", path)

    def post(self, path: str, body: Any) -> Reply:
        return self.request("POST", path, body)

    def post_results(self, results: list[dict]) -> Reply:
        return self.post("/api/v1/station/results", {"results": results})

    def close(self) -> None:
        self.http.close()


def mix_in_mqtt(clients: dict[str, StationHTTP], *, name: str) -> dict[str, Any]:
    """Every second station (in code order) over MQTT when a broker is configured; else as is."""
    if not settings.MQTT_URL:
        return clients
    link = MQTTLink(
        settings.MQTT_URL,
        root=settings.MQTT_TOPIC_ROOT,
        protocol=settings.MQTT_PROTOCOL,
        name=name,
    )
    return {
        code: StationMQTT(client, link, code) if index % 2 else client
        for index, (code, client) in enumerate(sorted(clients.items()))
    }
