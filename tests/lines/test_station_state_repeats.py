"""A station that reports the state (and reason) it is already in records nothing new: no history
row, no audit event; the API still answers 202. A new state or a new reason is an event."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import Event
from lines.models import Station, StationStateChange
from lines.services import set_station_state

STATE = "/api/v1/station/state"


def history(code: str) -> list[tuple[str, str]]:
    return list(
        StationStateChange.objects.filter(station__code=code)
        .order_by("occurred_at", "id")
        .values_list("state", "reason")
    )


def state_events(code: str) -> int:
    return Event.objects.filter(verb="station_state", subject=code).count()


@pytest.fixture
def presser(station_client):
    return station_client("PR-PRS-1")


def test_reporting_the_current_state_again_records_nothing(presser):
    first = presser.post_json(STATE, {"state": "running"})
    assert first.status_code == 202
    for _ in range(3):  # a heartbeat, a resend
        again = presser.post_json(STATE, {"state": "running"})
        assert again.status_code == 202
        assert again.json()["state"] == "running"
    assert history("PR-PRS-1") == [("running", "")]
    assert state_events("PR-PRS-1") == 1


def test_the_same_state_with_another_reason_is_an_event(presser):
    presser.post_json(STATE, {"state": "down", "reason": "Hydraulic alarm"})
    presser.post_json(STATE, {"state": "down", "reason": "Hydraulic alarm"})
    presser.post_json(STATE, {"state": "down", "reason": "Seal replaced, waiting for QA"})
    assert history("PR-PRS-1") == [
        ("down", "Hydraulic alarm"),
        ("down", "Seal replaced, waiting for QA"),
    ]
    assert state_events("PR-PRS-1") == 2


def test_a_first_report_is_recorded_even_of_the_default_state(plant):
    station = Station.objects.get(code="PR-PRS-1")
    assert station.state == Station.State.IDLE and not history("PR-PRS-1")
    set_station_state(station, state="idle", by="test")
    assert history("PR-PRS-1") == [("idle", "")]


def test_a_late_report_is_compared_with_the_state_in_force_when_it_happened(plant):
    station = Station.objects.get(code="PR-PRS-1")
    now = timezone.now()
    set_station_state(station, state="down", by="test", occurred_at=now - timedelta(hours=2))
    set_station_state(station, state="running", by="test", occurred_at=now - timedelta(hours=1))
    # Down was already in force 90 minutes ago: nothing new.
    set_station_state(station, state="down", by="test", occurred_at=now - timedelta(minutes=90))
    assert len(history("PR-PRS-1")) == 2
    # Maintenance was not in force then: recorded; the current state stays as it is.
    set_station_state(
        station, state="maintenance", by="test", occurred_at=now - timedelta(minutes=80)
    )
    assert history("PR-PRS-1") == [("down", ""), ("maintenance", ""), ("running", "")]
    assert Station.objects.get(pk=station.pk).state == "running"
    assert state_events("PR-PRS-1") == 3
