"""The line-performance pages: a line's OEE, a station's stops with reasons engineers correct, the
equipment registry and one item; each for the roles, with its query count pinned."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import Event
from lines.equipment import record_calibration
from lines.models import (
    Equipment,
    EquipmentCalibration,
    EquipmentStatusChange,
    Station,
    StationStateChange,
    StopReasonCorrection,
)
from lines.services import set_station_state


@pytest.fixture
def stops(plant):
    """PR-PRS-1 ran, jammed and ran again over the last hours; YK-PRS-1 went down too."""
    now = timezone.now()
    press = Station.objects.get(code="PR-PRS-1")
    set_station_state(press, state="running", by="test", occurred_at=now - timedelta(hours=3))
    set_station_state(
        press, state="down", by="test", reason="jam", occurred_at=now - timedelta(hours=2)
    )
    set_station_state(press, state="running", by="test", occurred_at=now - timedelta(hours=1))
    yk = Station.objects.get(code="YK-PRS-1")
    set_station_state(
        yk, state="down", by="test", reason="stuck door", occurred_at=now - timedelta(hours=1)
    )
    return StationStateChange.objects.get(station=press, state="down")


def test_the_line_oee_page_shows_stations_zone_timeline_and_pareto(stops, signed_in, operator):
    response = signed_in(operator).get(reverse("line-oee", args=["proto"]))
    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="oee-zone">Asia/Tokyo<' in page
    assert 'data-station="PR-PRS-1"' in page and 'id="oee-data"' in page
    assert "js/oee.js" in page and "<script>" not in page  # the CSP forbids inline script
    chart = response.context["chart"]
    assert {s["state"] for s in chart["segments"] if s["station"] == "PR-PRS-1"} >= {"running"}


def test_the_line_view_cards_show_todays_oee(stops, signed_in, operator):
    page = signed_in(operator).get(reverse("line-stations", args=["proto"])).content.decode()
    card = page.split('id="station-PR-PRS-1"')[1].split('class="station ')[0]
    assert "OEE today" in card and reverse("line-oee", args=["proto"]) in card


def test_a_line_engineer_corrects_a_stops_reason_on_the_page(stops, signed_in, line_engineer):
    client = signed_in(line_engineer)
    page = client.get(reverse("station-stops", args=["PR-PRS-1"])).content.decode()
    row = page.split(f'id="stop-{stops.pk}"')[1].split("</tr>")[0]
    assert '<b class="mono">jam</b>' in row and 'name="reason"' in row
    response = client.post(
        reverse("stop-reason", args=[stops.pk]), {"reason": "material_wait", "note": "No sheets"}
    )
    assert response.status_code == 302
    correction = StopReasonCorrection.objects.get(state_change=stops)
    assert (correction.reason.code, correction.corrected_by, correction.note) == (
        "material_wait",
        line_engineer,
        "No sheets",
    )
    event = Event.objects.get(verb="stop_reason_corrected")
    assert event.data["reason"] == "material_wait" and event.data["was"] == "jam"
    page = client.get(reverse("station-stops", args=["PR-PRS-1"])).content.decode()
    row = page.split(f'id="stop-{stops.pk}"')[1].split("</tr>")[0]
    assert '<b class="mono">material_wait</b>' in row and "lena-line-engineer" in row


@pytest.mark.parametrize(
    ("data", "why"),
    [
        ({"reason": "gremlins"}, "unknown reason"),
        ({}, "no reason"),
        ({"reason": "jam", "note": "x" * 201}, "long note"),
    ],
)
def test_a_bad_correction_writes_nothing(stops, signed_in, line_engineer, data, why):
    events = Event.objects.count()
    response = signed_in(line_engineer).post(reverse("stop-reason", args=[stops.pk]), data)
    assert response.status_code == 302, why
    assert not StopReasonCorrection.objects.exists() and Event.objects.count() == events


def test_a_running_state_takes_no_reason(stops, signed_in, line_engineer):
    running = StationStateChange.objects.filter(station=stops.station, state="running").first()
    signed_in(line_engineer).post(reverse("stop-reason", args=[running.pk]), {"reason": "jam"})
    assert not StopReasonCorrection.objects.exists()


def test_operators_and_quality_cannot_correct_reasons_or_lock_out(
    stops, signed_in, operator, quality_engineer, outsider
):
    for user in (operator, quality_engineer):
        client = signed_in(user)
        assert (
            client.post(reverse("stop-reason", args=[stops.pk]), {"reason": "jam"}).status_code
            == 403
        )
        response = client.post(
            reverse("equipment-status", args=["PR-CIP-1"]), {"action": "lock_out", "reason": "x"}
        )
        assert response.status_code == 403
        page = client.get(reverse("station-stops", args=["PR-PRS-1"])).content.decode()
        assert "Needs the line engineer role" in page and 'name="reason"' not in page
    assert signed_in(outsider).get(reverse("line-oee", args=["proto"])).status_code == 403
    assert signed_in(None).get(reverse("equipment-list")).status_code == 302  # to sign in
    assert not StopReasonCorrection.objects.exists()
    assert Equipment.objects.get(code="PR-CIP-1").status == "in_service"


def test_a_line_engineer_locks_out_and_returns_a_vessel(plant, signed_in, line_engineer):
    client = signed_in(line_engineer)
    url = reverse("equipment-status", args=["PR-CIP-1"])
    client.post(url, {"action": "lock_out", "reason": "Pressure sensor drift"})
    assert Equipment.objects.get(code="PR-CIP-1").status == "locked_out"
    client.post(url, {"action": "lock_out", "reason": "again"})  # not a move it can make
    client.post(url, {"action": "return", "reason": ""})  # no reason: refused
    assert Equipment.objects.get(code="PR-CIP-1").status == "locked_out"
    client.post(url, {"action": "return", "reason": "Sensor replaced"})
    assert list(
        EquipmentStatusChange.objects.filter(equipment__code="PR-CIP-1")
        .order_by("at", "id")
        .values_list("status", "reason")
    ) == [("locked_out", "Pressure sensor drift"), ("in_service", "Sensor replaced")]
    page = client.get(reverse("equipment", args=["PR-CIP-1"])).content.decode()
    assert "Pressure sensor drift" in page and "Sensor replaced" in page


def test_the_registry_filters_and_highlights_calibration_due(
    plant, signed_in, operator, line_engineer
):
    today = timezone.localdate()
    record_calibration(
        Equipment.objects.get(code="PR-CIP-1"), due=today + timedelta(days=5), by=line_engineer
    )
    record_calibration(
        Equipment.objects.get(code="YK-WIP-1"), due=today + timedelta(days=200), by=line_engineer
    )
    client = signed_in(operator)
    page = client.get(reverse("equipment-list")).content.decode()
    assert 'class="cal-due_soon" data-code="PR-CIP-1"' in page
    assert 'class="cal-ok" data-code="YK-WIP-1"' in page
    due = client.get(reverse("equipment-list") + "?due=1&within=30").content.decode()
    assert 'data-code="PR-CIP-1"' in due and 'data-code="YK-WIP-1"' not in due
    vessels = client.get(reverse("equipment-list") + "?kind=press_vessel").content.decode()
    assert 'data-code="PR-CIP-1"' in vessels and 'data-code="PR-FIX-1"' not in vessels


def test_a_calibration_due_before_it_was_done_is_refused(plant, signed_in, line_engineer):
    yesterday = timezone.localdate() - timedelta(days=1)
    signed_in(line_engineer).post(
        reverse("equipment-calibration", args=["PR-CIP-1"]), {"due": yesterday.isoformat()}
    )
    assert not EquipmentCalibration.objects.exists()
    assert Equipment.objects.get(code="PR-CIP-1").calibration_due is None


PAGES = {
    # Sign-in, permissions and the header, then the window's reads (analytics.oee.read_window).
    "line oee": (lambda: reverse("line-oee", args=["yokohama"]), 20),
    # And the stops' corrections with their reasons and authors.
    "station stops": (lambda: reverse("station-stops", args=["PR-PRS-1"]), 20),
    "equipment": (lambda: reverse("equipment-list"), 10),
    "equipment item": (lambda: reverse("equipment", args=["PR-CIP-1"]), 15),
}


@pytest.mark.parametrize("page", PAGES)
def test_pages_run_a_fixed_number_of_queries(
    stops, signed_in, line_engineer, django_assert_max_num_queries, page
):
    url, bound = PAGES[page]
    client = signed_in(line_engineer)
    client.get(url())  # sessions and caches warmed
    with django_assert_max_num_queries(bound, info=page):
        assert client.get(url()).status_code == 200


def _pressing_version():
    from lines.models import RecipeVersion

    return RecipeVersion.objects.released().get(
        recipe__line__code="proto", recipe__station_kind="pressing", recipe__design__isnull=True
    )


def test_a_line_engineer_sets_an_ideal_cycle_time_on_the_oee_page(plant, signed_in, line_engineer):
    from lines.models import IdealCycleTime

    version = _pressing_version()
    client = signed_in(line_engineer)
    url = reverse("ideal-cycle-time", args=[version.pk])
    for bad in ("0", "-4", "soon", ""):
        client.post(url, {"ideal_cycle_s": bad})
    assert not IdealCycleTime.objects.exists()
    client.post(url, {"ideal_cycle_s": "95"})
    client.post(url, {"ideal_cycle_s": "90.5"})
    page = client.get(reverse("line-oee", args=["proto"])).content.decode()
    row = page.split(f'id="cycle-{version.pk}"')[1].split("</tr>")[0]
    assert "90.5 s" in row
    assert Event.objects.filter(verb="ideal_cycle_time_set").count() == 2


def test_an_operator_cannot_set_an_ideal_cycle_time(plant, signed_in, operator):
    from lines.models import IdealCycleTime

    url = reverse("ideal-cycle-time", args=[_pressing_version().pk])
    assert signed_in(operator).post(url, {"ideal_cycle_s": "90"}).status_code == 403
    assert not IdealCycleTime.objects.exists()
