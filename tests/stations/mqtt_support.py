"""Real MQTT for the bridge's tests: the bridge as a process, equipment as a paho client, and a
Mosquitto of a test's own where the test restarts the broker (the shared one at 127.0.0.1:1883
is left alone). Every test uses a topic root and client ids of its own, so tests sharing the
development broker never see each other's messages."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from django.conf import settings
from paho.mqtt.enums import CallbackAPIVersion

from stations import bridge_health
from tests import processes

SHARED_BROKER = ("127.0.0.1", 1883)


def shared_broker_url() -> str:
    try:
        socket.create_connection(SHARED_BROKER, timeout=1).close()
    except OSError:
        pytest.skip("needs Mosquitto at 127.0.0.1:1883")
    return "mqtt://127.0.0.1:1883"


def unique(prefix: str) -> str:
    return f"{prefix}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class BridgeProcess:
    """`manage.py mqtt_bridge` against the test database, as the runtime role."""

    def __init__(self, stack: processes.Stack, url: str, *, protocol: str = "5") -> None:
        self.stack = stack
        self.url = url
        self.client_id = unique("test-bridge")
        self.root = f"{unique('test')}/mes/v1"
        self.env = {
            **stack.env,
            "MQTT_URL": url,
            "MQTT_CLIENT_ID": self.client_id,
            "MQTT_TOPIC_ROOT": self.root,
            "MQTT_PROTOCOL": protocol,
            # The heartbeat under the key this (the test's) process reads.
            "CACHE_KEY_PREFIX": settings.CACHE_KEY_PREFIX,
        }
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        log = open(self.stack.tmp / f"bridge-{self.starts}.log", "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            [str(processes.BIN / "python"), "manage.py", "mqtt_bridge"],
            cwd=processes.ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        self.wait_connected()

    def wait_connected(self, timeout: float = 60) -> None:
        def connected() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"the bridge exited:\n{self.logs()}")
            health = bridge_health.read()
            return bool(health and health["connected"] and health["connected_since"])

        processes.wait_for(connected, timeout=timeout, what="the bridge to connect")

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
        forget_session(self.url, self.client_id)

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text()[-4000:]}" for p in self.stack.tmp.glob("bridge-*.log")
        )


def forget_session(url: str, client_id: str) -> None:
    """End a persistent session on the broker, so the shared broker keeps nothing of a test."""
    host, port = _host_port(url)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
    try:
        client.connect(host, port)
        client.loop_start()
        time.sleep(0.2)
        client.disconnect()
        client.loop_stop()
    except OSError:
        pass


def _host_port(url: str) -> tuple[str, int]:
    host, _, port = url.removeprefix("mqtt://").partition(":")
    return host, int(port or 1883)


class Equipment:
    """Station equipment on MQTT: publishes with QoS 1 (each PUBACK awaited) and collects every
    reply under the test's topic root."""

    def __init__(self, url: str, root: str) -> None:
        self.root = root
        self.url = url
        self.replies: list[tuple[str, dict[str, Any]]] = []
        self.lock = threading.Lock()
        self.client_id = unique("test-equipment")
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=self.client_id, clean_session=False
        )
        self.client.on_message = self._on_message
        # A station's replies, and a dry-room zone's (mes/v1/env/<zone>/replies).
        self.client.on_connect = lambda c, *a: c.subscribe(
            [(f"{root}/+/replies", 1), (f"{root}/env/+/replies", 1)]
        )
        self.client.reconnect_delay_set(0.2, 2)
        host, port = _host_port(url)
        self.client.connect(host, port, keepalive=10)
        self.client.loop_start()
        processes.wait_for(self.client.is_connected, timeout=10, what="equipment to connect")
        time.sleep(0.3)  # the subscription's SUBACK

    def _on_message(self, client, userdata, message) -> None:
        with self.lock:
            self.replies.append((message.topic, json.loads(message.payload)))

    def publish(self, station: str, kind: str, body: Any, *, wait: bool = True) -> None:
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        info = self.client.publish(f"{self.root}/{station}/{kind}", payload, qos=1)
        if wait:
            info.wait_for_publish(timeout=30)

    def replies_for(self, station: str) -> list[dict[str, Any]]:
        with self.lock:
            return [
                body for topic, body in self.replies if topic == f"{self.root}/{station}/replies"
            ]

    def wait_replies(self, station: str, n: int, timeout: float = 30) -> list[dict[str, Any]]:
        processes.wait_for(
            lambda: len(self.replies_for(station)) >= n, timeout=timeout, what=f"{n} replies"
        )
        return self.replies_for(station)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        forget_session(self.url, self.client_id)


class Mosquitto:
    """A mosquitto of the test's own, persisting its sessions to disk, so the test can stop and
    restart it."""

    def __init__(self, tmp: Path) -> None:
        if shutil.which("mosquitto") is None and not Path("/usr/sbin/mosquitto").exists():
            pytest.skip("mosquitto is not installed")
        self.binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.port = processes.free_port()
        self.url = f"mqtt://127.0.0.1:{self.port}"
        self.dir = tmp / "mosquitto"
        self.dir.mkdir(exist_ok=True)
        self.conf = self.dir / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence true\n"
            f"persistence_location {self.dir}/\n"
            "autosave_interval 1\n"
            "persistent_client_expiration 1h\n"
            "max_queued_messages 10000\n"
        )
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        log = open(self.dir / "mosquitto.log", "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            [self.binary, "-c", str(self.conf)], stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

        def up() -> bool:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return True
            except OSError:
                return False

        processes.wait_for(up, timeout=10, what="mosquitto")

    def stop(self) -> None:
        """A clean stop: mosquitto writes its sessions and queued messages to disk."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


class EmbeddedBroker:
    """The demo's broker: `manage.py mqtt_embedded_broker` (amqtt, MQTT 3.1.1)."""

    def __init__(self, tmp: Path) -> None:
        self.port = processes.free_port()
        self.url = f"mqtt://127.0.0.1:{self.port}"
        self.tmp = tmp
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        log = open(self.tmp / "amqtt.log", "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            [str(processes.BIN / "python"), "manage.py", "mqtt_embedded_broker",
             "--port", str(self.port)],
            cwd=processes.ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip

        def up() -> bool:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return True
            except OSError:
                return False

        processes.wait_for(up, timeout=30, what="the embedded broker")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=10)
