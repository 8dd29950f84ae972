"""POST /station/state: the station's state and its history (availability, the line view)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from lines.models import Station, StationStateChange

STATE = "/api/v1/station/state"


def test_state_is_recorded_with_its_history(station_client):
    presser = station_client("PR-PRS-1")
    down_at = timezone.now() - timedelta(minutes=5)
    response = presser.post_json(
        STATE, {"state": "down", "reason": "Hydraulic alarm", "occurred_at": down_at.isoformat()}
    )
    assert response.status_code == 202
    presser.post_json(STATE, {"state": "running"})
    assert Station.objects.get(code="PR-PRS-1").state == "running"
    history = list(
        StationStateChange.objects.filter(station__code="PR-PRS-1")
        .order_by("occurred_at")
        .values_list("state", "reason")
    )
    assert history == [("down", "Hydraulic alarm"), ("running", "")]


def test_state_refuses_an_unknown_state(station_client):
    response = station_client("PR-PRS-1").post_json(STATE, {"state": "exploded"})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert "state" in response.json()["errors"]
    assert not StationStateChange.objects.exists()


def test_state_refuses_a_time_without_offset(station_client):
    response = station_client("PR-PRS-1").post_json(
        STATE, {"state": "idle", "occurred_at": "2025-01-01T09:00:00"}
    )
    assert response.status_code == 400
    assert "occurred_at" in response.json()["errors"]
    assert not StationStateChange.objects.exists()
