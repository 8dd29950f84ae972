"""GET /station/results/{event_id}: a station reads the status of its own events only."""

from __future__ import annotations

from tests.fixtures.stations import RESULTS_URL


def test_result_status_reads_a_pending_result(station_client, proto_batch, result_for):
    stacker = station_client("PR-STK-1")
    stacker.post_results(result_for(proto_batch.cells.first(), "stacking", event_id="E/1:a"))
    response = stacker.status_of("E/1:a")
    assert response.status_code == 200
    body = response.json()
    assert body["event_id"] == "E/1:a"
    assert (body["status"], body["outcome"], body["violations"], body["reason"]) == (
        "pending",
        None,
        [],
        "",
    )


def test_result_status_is_404_for_an_event_never_sent(station_client):
    response = station_client("PR-STK-1").status_of("never-sent")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_result_status_is_404_for_another_stations_event(station_client, proto_batch, result_for):
    stacker, presser = station_client("PR-STK-1"), station_client("PR-PRS-1")
    stacker.post_results(result_for(proto_batch.cells.first(), "stacking", event_id="E-1"))
    assert stacker.status_of("E-1").status_code == 200
    response = presser.status_of("E-1")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_result_status_needs_a_token(client):
    response = client.get(f"{RESULTS_URL}/E-1")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
