"""The zone page (air against limits, excursions and what they held) and the line view's dry rooms."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from environment.intake import accept_readings

ZONE = "proto-dry-room"


def reading(seconds_ago: float, dew_point: float, **more) -> dict:
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=seconds_ago)
    return {"sensor": "DP-1", "at": at.isoformat(), "dew_point_c": dew_point, **more}


@pytest.fixture
def wet_spell(plant, proto_batch, stations, record):
    """A cell stacked during a 120 s excursion 30 minutes ago; the room dry since."""
    cell = proto_batch.cells.order_by("position").first()
    now = datetime.now(UTC).replace(microsecond=0)
    record(
        cell,
        stations["PR-STK-1"],
        occurred_at=now - timedelta(seconds=1750),
        material_lots={"cathode": "CAT-2611-A-01"},
    )
    readings = [reading(s, -55.0, temperature_c=21.5) for s in range(2000, 1830, -10)]
    readings += [reading(s, -31.5) for s in range(1820, 1690, -10)]
    readings += [reading(s, -56.0, h2s_ppm=0.05) for s in range(1690, 0, -10)]
    accept_readings(ZONE, {"readings": readings})
    return cell


def test_the_zone_page_charts_the_air_and_lists_what_the_excursion_held(
    wet_spell, signed_in, operator, django_assert_max_num_queries
):
    browser = signed_in(operator)
    with django_assert_max_num_queries(14):
        response = browser.get(reverse("zone", args=[ZONE]))
    assert response.status_code == 200
    html = response.content.decode()
    chart = json.loads(
        html.split('id="zone-chart" type="application/json">')[1].split("</script>")[0]
    )
    dew = next(q for q in chart["quantities"] if q["key"] == "dew_point_c")
    assert dew["limits"] == [{"bound": "max", "value": -40.0}]
    # 6 h at 600 points: 36 s buckets; the worst of each bucket, so the excursion shows.
    assert max(y for _, y in dew["series"]["DP-1"]) == -31.5
    assert min(y for _, y in dew["series"]["DP-1"]) == -56.0
    assert [e["counted"] for e in chart["excursions"]] == [True]
    assert chart["excursions"][0]["to"] - chart["excursions"][0]["from"] == 130_000
    temperature = next(q for q in chart["quantities"] if q["key"] == "temperature_c")
    assert temperature["limits"] == [
        {"bound": "min", "value": 18.0},
        {"bound": "max", "value": 26.0},
    ]
    assert {y for _, y in temperature["series"]["DP-1"]} == {21.5}
    excursions = html.split('id="excursions"')[1]
    assert "1 cell" in excursions and "CAT-2611-A-01" in excursions
    assert "130 s" in excursions


def test_the_zone_pages_query_count_does_not_grow_with_excursions(
    plant, signed_in, operator, django_assert_max_num_queries
):
    # Twenty short excursions and one long: still a fixed number of queries.
    readings = []
    for i in range(20):
        base = 5000 - i * 100
        readings += [reading(base, -30.0), reading(base - 10, -55.0)]
    accept_readings(ZONE, {"readings": readings})
    browser = signed_in(operator)
    with django_assert_max_num_queries(14):
        response = browser.get(reverse("zone", args=[ZONE]) + "?hours=24")
    assert response.status_code == 200
    assert response.content.decode().count("tolerated</span>") == 20


def test_the_line_view_shows_each_zones_current_dew_point(
    plant, signed_in, operator, django_assert_max_num_queries
):
    browser = signed_in(operator)
    page = browser.get(reverse("line", args=["proto"])).content.decode()
    assert "no reading in the last 15 min" in page.split('id="zone-proto-dry-room"')[1]
    accept_readings(ZONE, {"readings": [reading(120, -52.0), reading(60, -38.5)]})
    with django_assert_max_num_queries(12):
        live = browser.get(reverse("line-zones", args=["proto"])).content.decode()
    tile = live.split('id="zone-proto-dry-room"')[1]
    assert 'class="kpi bad"' in live and "-38.5 °C" in tile and "beyond the limit" in tile
    accept_readings(ZONE, {"readings": [reading(30, -47.21)]})
    tile = (
        browser.get(reverse("line", args=["proto"]))
        .content.decode()
        .split('id="zone-proto-dry-room"')[1]
    )
    assert "-47.2 °C" in tile and "within the limit" in tile


@pytest.mark.parametrize("path", ["/zones/proto-dry-room/", "/lines/proto/live/zones"])
def test_zone_pages_need_signing_in_and_the_permission(plant, signed_in, outsider, path):
    assert signed_in(None).get(path).status_code == 302
    assert signed_in(outsider).get(path).status_code == 403


def test_an_unknown_zone_is_404(plant, signed_in, operator):
    assert signed_in(operator).get("/zones/no-such-room/").status_code == 404


def test_a_window_that_is_not_offered_falls_back_to_six_hours(plant, signed_in, operator):
    html = signed_in(operator).get("/zones/proto-dry-room/?hours=abc").content.decode()
    assert "<strong>6 h</strong>" in html
