"""The broker configuration shipped for docker-compose (deploy/mosquitto/), run by a real
Mosquitto: anonymous clients are refused, a station may publish only under its own code and
read only its own replies, the bridge reads every station's. And the compose file wires it."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from tests import processes
from tests.stations.mqtt_support import Mosquitto, unique

pytestmark = pytest.mark.processes

DEPLOY = processes.ROOT / "deploy" / "mosquitto"


@pytest.fixture
def broker(tmp_path):
    broker = Mosquitto(tmp_path)  # skips where mosquitto is not installed
    conf = (DEPLOY / "mosquitto.conf").read_text()
    conf = conf.replace("listener 1883", f"listener {broker.port} 127.0.0.1")
    conf = conf.replace("/mosquitto/config/passwd", str(DEPLOY / "passwd"))
    conf = conf.replace("/mosquitto/config/acl", str(DEPLOY / "acl"))
    conf = conf.replace("/mosquitto/data/", f"{broker.dir}/")
    conf = conf.replace("log_dest stdout", f"log_dest file {broker.dir}/log")
    broker.conf.write_text(conf)
    broker.start()
    yield broker
    broker.stop()


class Client:
    def __init__(self, port: int, user: str | None, password: str | None = None) -> None:
        self.received: list[tuple[str, bytes]] = []
        self.refused: int | None = None
        self.connected = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=unique("acl"))
        if user:
            self.client.username_pw_set(user, password)
        self.client.on_connect = self._on_connect
        self.client.on_message = lambda c, u, m: self.received.append((m.topic, m.payload))
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        self.refused = reason_code.value if reason_code.is_failure else 0
        self.connected.set()

    def wait(self) -> int:
        assert self.connected.wait(10), "no CONNACK"
        return self.refused

    def subscribe(self, topic: str) -> None:
        self.client.subscribe(topic, qos=1)
        time.sleep(0.3)

    def publish(self, topic: str, body: dict) -> None:
        self.client.publish(topic, json.dumps(body), qos=1).wait_for_publish(timeout=10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_the_shipped_acl_holds_each_station_to_its_own_topics(broker):
    anonymous = Client(broker.port, None)
    assert anonymous.wait() != 0
    anonymous.close()
    wrong_password = Client(broker.port, "PR-STK-1", "not-its-password")
    assert wrong_password.wait() != 0
    wrong_password.close()

    bridge = Client(broker.port, "mes-bridge", "mes-bridge-demo")
    stacker = Client(broker.port, "PR-STK-1", "PR-STK-1-demo")
    press = Client(broker.port, "PR-PRS-1", "PR-PRS-1-demo")
    try:
        assert (bridge.wait(), stacker.wait(), press.wait()) == (0, 0, 0)
        bridge.subscribe("mes/v1/+/results")
        bridge.subscribe("mes/v1/+/state")
        stacker.subscribe("mes/v1/+/replies")  # granted only where the ACL lets it read
        stacker.publish("mes/v1/PR-STK-1/results", {"results": "own"})
        stacker.publish("mes/v1/PR-PRS-1/results", {"results": "posing as the press"})
        stacker.publish("mes/v1/PR-STK-1/replies", {"accepted": "forged reply"})
        press.publish("mes/v1/PR-PRS-1/state", {"state": "running"})
        bridge.publish("mes/v1/PR-STK-1/replies", {"accepted": 1, "duplicates": 0})
        bridge.publish("mes/v1/PR-PRS-1/replies", {"accepted": 2, "duplicates": 0})
        time.sleep(1)
        assert sorted(bridge.received) == [
            ("mes/v1/PR-PRS-1/state", b'{"state": "running"}'),
            ("mes/v1/PR-STK-1/results", b'{"results": "own"}'),
        ]
        assert stacker.received == [
            ("mes/v1/PR-STK-1/replies", b'{"accepted": 1, "duplicates": 0}')
        ]
    finally:
        for client in (bridge, stacker, press):
            client.close()


def test_the_credentials_script_writes_hashes_only(tmp_path):
    if subprocess.run(["which", "mosquitto_passwd"], capture_output=True).returncode:
        pytest.skip("mosquitto_passwd is not installed")
    script = tmp_path / "credentials.sh"
    script.write_text((DEPLOY / "credentials.sh").read_text())
    out = subprocess.run(
        ["sh", str(script), "ST-A", "ST-B"], capture_output=True, text=True, check=True
    ).stdout
    printed = dict(line.split(" ", 1) for line in out.splitlines())
    assert sorted(printed) == ["ST-A", "ST-B", "env-gateway", "mes-bridge"]
    stored = dict(line.split(":", 1) for line in (tmp_path / "passwd").read_text().splitlines())
    assert sorted(stored) == sorted(printed)
    assert all(h.startswith("$7$") and printed[u] not in h for u, h in stored.items())


def test_compose_runs_the_broker_and_the_bridge_with_the_shipped_files():
    compose = yaml.safe_load((processes.ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    mounted = {
        Path(volume.split(":")[0]).name
        for volume in services["mosquitto"]["volumes"]
        if volume.startswith("./")
    }
    assert mounted == {"mosquitto.conf", "passwd", "acl"}
    for volume in services["mosquitto"]["volumes"]:
        if volume.startswith("./"):
            assert (processes.ROOT / volume.split(":")[0]).is_file(), volume
    bridge = services["mqtt-bridge"]
    assert bridge["command"] == ["python", "manage.py", "mqtt_bridge"]
    assert bridge["environment"]["MQTT_URL"].endswith("@mosquitto:1883")
    assert bridge["environment"]["DATABASE_ROLE"] == "app"
    assert "mosquitto" in bridge["depends_on"]
    assert "mosquittodata" in compose["volumes"]
