"""GET /station and the track-in interlock."""

from __future__ import annotations

import pytest

from batches.services import hold_cell, scrap_cell
from stations.models import InboxEntry

TRACK_IN = "/api/v1/station/track-in"


@pytest.fixture
def cells(proto_batch):
    return list(proto_batch.cells.all())


def test_station_shows_itself_and_its_active_recipe(station_client):
    body = station_client("PR-PRS-1").get("/api/v1/station").json()
    assert (body["code"], body["kind"], body["line"], body["state"]) == (
        "PR-PRS-1",
        "pressing",
        "proto",
        "idle",
    )
    assert body["recipe"]["version"] == 2  # the seed released a second pressing version
    assert body["recipe"]["parameters"]["dwell_s"] == {
        "unit": "s",
        "target": 300.0,
        "min": 120.0,
        "max": None,
    }


def test_track_in_admits_a_cell_at_its_next_step(station_client, cells):
    response = station_client("PR-STK-1").post_json(TRACK_IN, {"cell": cells[0].serial})
    assert response.status_code == 200
    body = response.json()
    assert (body["cell"], body["batch"], body["step"]) == (
        cells[0].serial,
        cells[0].batch.code,
        "stacking",
    )
    assert "layer_count" in body["recipe"]["parameters"]
    assert not InboxEntry.objects.exists()


def refused(response, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    assert response.json()["code"] == code


def test_track_in_refuses_an_unknown_cell(station_client):
    refused(station_client("PR-STK-1").post_json(TRACK_IN, {"cell": "NOPE"}), 404, "unknown_cell")


def test_track_in_refuses_a_cell_not_at_this_step(station_client, cells):
    refused(
        station_client("PR-PRS-1").post_json(TRACK_IN, {"cell": cells[0].serial}),
        409,
        "wrong_step",
    )


def test_track_in_refuses_another_lines_cell(station_client, cells):
    refused(
        station_client("YK-STK-1").post_json(TRACK_IN, {"cell": cells[0].serial}),
        409,
        "wrong_station",
    )


def test_track_in_refuses_a_cell_whose_route_skips_this_station(station_client, cells):
    refused(
        station_client("PR-AGE-1").post_json(TRACK_IN, {"cell": cells[0].serial}),
        409,
        "wrong_station",
    )


def test_track_in_refuses_a_cell_on_hold(station_client, cells, quality_engineer):
    hold_cell(cells[0], by=quality_engineer, reason="Suspect")
    refused(
        station_client("PR-STK-1").post_json(TRACK_IN, {"cell": cells[0].serial}), 409, "on_hold"
    )


def test_track_in_refuses_a_scrapped_cell(station_client, cells, quality_engineer):
    scrap_cell(cells[0], by=quality_engineer, reason="Dropped")
    refused(
        station_client("PR-STK-1").post_json(TRACK_IN, {"cell": cells[0].serial}), 409, "scrapped"
    )


def test_track_in_refuses_a_body_without_cell(station_client):
    refused(station_client("PR-STK-1").post_json(TRACK_IN, {}), 400, "invalid")


def test_track_in_refuses_a_non_json_body(station_client):
    response = station_client("PR-STK-1").http.post(TRACK_IN, "cell=X", content_type="text/plain")
    refused(response, 415, "unsupported_format")
