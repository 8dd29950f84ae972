"""`POST /api/v1/env/{zone}/readings`: who may send, what is refused, and `zones` on the lines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import Group, User

from audit.models import Event
from environment.intake import accept_readings
from environment.models import Reading
from lines.models import Excursion

URL = "/api/v1/env/proto-dry-room/readings"
NOW = datetime.now(UTC).replace(microsecond=0)
GOOD = {"sensor": "DP-1", "at": (NOW - timedelta(minutes=5)).isoformat(), "dew_point_c": -52.5}


@pytest.fixture
def gateway(db) -> User:
    user = User.objects.create_user(username="dry-room-gateway", password="a-long-test-password")
    user.groups.add(Group.objects.get(name="sensor_gateway"))
    return user


def nothing_written() -> bool:
    return not Reading.objects.exists() and not Excursion.objects.exists()


def test_a_sensor_gateways_token_sends_readings_and_reads_nothing_else(plant, api_as, gateway):
    client = api_as(gateway)
    response = client.post(URL, {"readings": [GOOD]}, format="json")
    assert response.status_code == 202
    assert response.json() == {"accepted": 1, "duplicates": 0, "excursions": 0}
    reading = Reading.objects.get()
    assert (reading.sensor, reading.at, reading.dew_point_c) == (
        "DP-1",
        NOW - timedelta(minutes=5),
        -52.5,
    )
    assert reading.temperature_c is None and reading.h2s_ppm is None
    assert client.get("/api/v1/lines").status_code == 403


def test_the_same_readings_sent_again_are_duplicates(plant, api_as, line_engineer):
    client = api_as(line_engineer)
    body = {"readings": [GOOD, {**GOOD, "at": (NOW - timedelta(minutes=4)).isoformat()}]}
    assert client.post(URL, body, format="json").json()["accepted"] == 2
    for _ in range(3):
        again = client.post(URL, body, format="json")
        assert again.status_code == 202
        assert again.json() == {"accepted": 0, "duplicates": 2, "excursions": 0}
    assert Reading.objects.count() == 2


def test_an_unknown_zone_is_404(plant, api_as, line_engineer):
    response = api_as(line_engineer).post(
        "/api/v1/env/no-such-room/readings", {"readings": [GOOD]}, format="json"
    )
    assert response.status_code == 404
    assert response.json()["code"] == "unknown_zone"
    assert nothing_written()


@pytest.mark.parametrize(
    ("reading", "field"),
    [
        ({**GOOD, "sensor": ""}, "sensor"),
        ({**GOOD, "sensor": "DP\n1"}, "sensor"),
        ({**GOOD, "sensor": "x" * 61}, "sensor"),
        ({**GOOD, "sensor": 7}, "sensor"),
        ({k: v for k, v in GOOD.items() if k != "at"}, "at"),
        ({**GOOD, "at": "2026-11-30T09:00:00"}, "at"),  # no offset
        ({**GOOD, "at": "2026-11-30"}, "at"),
        ({**GOOD, "at": "yesterday"}, "at"),
        ({**GOOD, "at": "1999-12-31T23:59:59Z"}, "at"),
        ({**GOOD, "at": (NOW + timedelta(days=2)).isoformat()}, "at"),
        ({**GOOD, "dew_point_c": "-50"}, "dew_point_c"),
        ({**GOOD, "dew_point_c": True}, "dew_point_c"),
        ({**GOOD, "h2s_ppm": 1e300}, "h2s_ppm"),
        ({**GOOD, "humidity": 3}, "humidity"),
        ({"sensor": "DP-1", "at": GOOD["at"]}, "non_field_errors"),  # no value at all
        ("DP-1 -52.5", "non_field_errors"),
    ],
)
def test_a_malformed_reading_refuses_the_whole_request(
    plant, api_as, line_engineer, reading, field
):
    body = {"readings": [GOOD, reading]}
    response = api_as(line_engineer).post(URL, body, format="json")
    assert response.status_code == 400, response.content
    error = response.json()
    assert error["code"] == "invalid"
    assert list(error["errors"]["readings"]) == ["1"]
    assert list(error["errors"]["readings"]["1"]) == [field]
    assert nothing_written()


@pytest.mark.parametrize(
    "body",
    [
        {"readings": []},
        {"readings": [GOOD] * 1001},
        {"readings": GOOD},
        {"readings": [GOOD], "zone": "proto-dry-room"},
        [GOOD],
    ],
)
def test_a_malformed_envelope_is_400_invalid(plant, api_as, line_engineer, body):
    response = api_as(line_engineer).post(URL, body, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert nothing_written()


def test_not_a_number_or_infinity_is_refused(plant):
    # JSON has no NaN; an MQTT body parsed by Python's json module may hold one.
    from core.errors import DomainError

    for value in (float("nan"), float("inf")):
        with pytest.raises(DomainError) as refused:
            accept_readings("proto-dry-room", {**GOOD, "dew_point_c": value})
        assert refused.value.status == 400
        assert refused.value.errors == {
            "readings": {"0": {"dew_point_c": ["A finite number (at most 1e+06 in size) or null."]}}
        }
    assert nothing_written()


def test_one_reading_as_mqtt_sends_it_is_accepted(plant):
    assert accept_readings("proto-dry-room", GOOD) == {
        "accepted": 1,
        "duplicates": 0,
        "excursions": 0,
    }


def test_only_who_may_record_readings_sends_them(plant, api_as, operator, quality_engineer):
    events = Event.objects.count()
    assert api_as(None).post(URL, {"readings": [GOOD]}, format="json").status_code == 401
    for person in (operator, quality_engineer):
        response = api_as(person).post(URL, {"readings": [GOOD]}, format="json")
        assert response.status_code == 403
        assert response.json()["code"] == "permission_denied"
    assert nothing_written()
    assert Event.objects.count() == events


def test_the_lines_read_their_dry_room_zones(plant, api_as, operator):
    lines = {line["code"]: line for line in api_as(operator).get("/api/v1/lines").json()["results"]}
    assert lines["proto"]["zones"] == [
        {
            "code": "proto-dry-room",
            "name": "Prototype line stacking dry room",
            "stations": ["PR-STK-1"],
            "limits": {
                "dew_point_c": {"max": -40.0},
                "temperature_c": {"min": 18.0, "max": 26.0},
                "h2s_ppm": {"max": 1.0},
            },
            "tolerated_s": 60,
        }
    ]
    assert lines["yokohama"]["zones"][0]["stations"] == ["YK-STK-1", "YK-STK-2"]
