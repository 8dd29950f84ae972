"""The station interlock's refusals are answers, not warnings; bad equipment input still warns."""

from __future__ import annotations

import logging


def test_a_track_in_refused_by_the_interlock_is_not_a_warning(proto_batch, station_client, caplog):
    press = station_client("PR-PRS-1")  # the cells wait for stacking: pressing is the wrong step
    serial = proto_batch.cells.first().serial
    with caplog.at_level(logging.INFO):
        response = press.post_json("/api/v1/station/track-in", {"cell": serial})
        unknown = press.post_json("/api/v1/station/track-in", {"cell": "NO-SUCH-CELL"})
    assert (response.status_code, response.json()["code"]) == (409, "wrong_step")
    assert unknown.status_code == 404
    assert not [r for r in caplog.records if r.name == "django.request"]


def test_a_bad_token_or_bad_body_still_warns(proto_batch, station_client, client, caplog):
    press = station_client("PR-PRS-1")
    with caplog.at_level(logging.INFO):
        bad_body = press.post_json("/api/v1/station/track-in", {"cell": ""})
        bad_token = client.post(
            "/api/v1/station/track-in",
            {"cell": "X"},
            content_type="application/json",
            HTTP_AUTHORIZATION="Bearer not-a-token",
        )
    assert (bad_body.status_code, bad_token.status_code) == (400, 401)
    warned = [r.status_code for r in caplog.records if r.name == "django.request"]
    assert warned == [400, 401]
    assert all(r.levelno == logging.WARNING for r in caplog.records if r.name == "django.request")
