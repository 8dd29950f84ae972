"""The bridge's handling of one message, in process (no broker): which topics it serves, where the
readings of a dry-room zone go, and how the ingestion health endpoint shows its heartbeat."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from core.errors import DomainError
from stations import bridge_health, mqtt
from stations.models import InboxEntry

ROOT = "plant-a/mes/v1"


@pytest.mark.parametrize(
    "topic",
    [
        "other/mes/v1/PR-STK-1/results",
        f"{ROOT}/PR-STK-1/replies",
        f"{ROOT}/PR-STK-1/results/extra",
        f"{ROOT}/PR-STK-1",
        f"{ROOT}/env/DRY-1/other",
    ],
)
def test_topics_the_bridge_does_not_serve_get_no_reply(plant, topic):
    assert mqtt.handle(topic, b'{"results": []}', root=ROOT) is None
    assert not InboxEntry.objects.exists()


def test_a_station_code_too_long_or_with_control_characters_is_unknown(plant):
    for code in ["X" * 41, "PR-STK-1\u0007"]:
        reply = mqtt.handle(f"{ROOT}/{code}/state", b'{"state": "running"}', root=ROOT)
        assert (reply.topic, reply.body["code"], reply.refused) == (
            f"{ROOT}/{code}/replies",
            "unknown_station",
            True,
        )


def test_readings_go_to_the_environment_intake_with_the_topics_zone(plant, monkeypatch):
    calls = []

    def accept_readings(zone_code: str, body: dict) -> dict:
        calls.append((zone_code, body))
        if body.get("sensor") == "broken":
            raise DomainError("invalid", "No such sensor.", status=400, errors={"sensor": ["?"]})
        return {"accepted": 1}

    monkeypatch.setattr(mqtt, "readings_intake", lambda: accept_readings)
    reading = b'{"sensor": "DP-1", "at": "2026-01-05T09:00:00Z", "dew_point_c": -45.5}'
    reply = mqtt.handle(f"{ROOT}/env/DRY-1/readings", reading, root=ROOT)
    assert (reply.topic, reply.body) == (f"{ROOT}/env/DRY-1/replies", {"accepted": 1})
    assert calls == [
        ("DRY-1", {"sensor": "DP-1", "at": "2026-01-05T09:00:00Z", "dew_point_c": -45.5})
    ]

    refused = mqtt.handle(f"{ROOT}/env/DRY-1/readings", b'{"sensor": "broken"}', root=ROOT)
    assert refused.body == {
        "code": "invalid",
        "detail": "No such sensor.",
        "errors": {"sensor": ["?"]},
    }
    for malformed in (b"[1, 2]", b"{nope"):
        reply = mqtt.handle(f"{ROOT}/env/DRY-1/readings", malformed, root=ROOT)
        assert (reply.body["code"], reply.refused) == ("invalid", True)
    assert len(calls) == 2  # the malformed ones never reached the intake
    assert mqtt.topics(ROOT, readings=True)[-1] == f"{ROOT}/env/+/readings"
    assert f"{ROOT}/env/+/readings" not in mqtt.topics(ROOT, readings=False)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mqtt://127.0.0.1:1883", mqtt.Broker("127.0.0.1", 1883)),
        ("mqtt://broker", mqtt.Broker("broker", 1883)),
        ("mqtts://br:8884", mqtt.Broker("br", 8884, tls=True)),
        ("mqtts://br", mqtt.Broker("br", 8883, tls=True)),
        (
            "mqtt://mes-bridge:p%40ss@mosquitto:1883",
            mqtt.Broker("mosquitto", 1883, "mes-bridge", "p@ss"),
        ),
    ],
)
def test_broker_urls(url, expected):
    assert mqtt.parse_url(url) == expected


@pytest.mark.parametrize("url", ["http://x:1883", "mqtt://", "1883"])
def test_a_broker_url_of_another_kind_is_refused(url):
    with pytest.raises(ValueError, match="MQTT_URL"):
        mqtt.parse_url(url)


def test_the_ingestion_health_shows_the_bridges_heartbeat(db, client):
    cache.delete(bridge_health.KEY)
    assert client.get("/api/v1/health/ingestion").json()["mqtt_bridge"] is None

    status = {
        "connected": True,
        "connected_since": "2026-01-05T09:00:00+00:00",
        "last_message_at": "2026-01-05T09:01:00+00:00",
        "counts": {"accepted": 7, "refused": 1, "connections": 1},
    }
    bridge_health.write(status)
    shown = client.get("/api/v1/health/ingestion").json()["mqtt_bridge"]
    assert shown["running"] is True
    assert shown["connected"] is True
    assert shown["counts"] == {"accepted": 7, "refused": 1, "connections": 1}
    assert shown["last_message_at"] == "2026-01-05T09:01:00+00:00"

    # Sixteen seconds without a heartbeat (three missed at 5 s): not running, not connected.
    later = timezone.now() + timedelta(seconds=16)
    stale = bridge_health.read(now=later)
    assert (stale["running"], stale["connected"]) == (False, False)
    assert bridge_health.read(now=timezone.now() + timedelta(seconds=14))["running"] is True
    cache.delete(bridge_health.KEY)
