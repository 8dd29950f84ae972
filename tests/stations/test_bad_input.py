"""Bad bytes and impossible times from stations: a clear 400 (or 404) naming the field, nothing
stored, never a 500; and a row an older release stored that cannot be read or applied is
rejected alone with a reason, while the rest of its line is applied and the lists still answer.

The shape checks (missing fields, wrong types, offsets, sizes) are in test_results_validation.py.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from batches.models import Batch
from lines.models import Station, StationStateChange
from stations import worker
from stations.models import InboxEntry, InboxKey
from stations.schema import EVENT_ID_MAX_LENGTH
from tests.fixtures.stations import RESULTS_URL

TRACK_IN = "/api/v1/station/track-in"
STATE = "/api/v1/station/state"
CYCLER_FILES = "/api/v1/station/cycler-files"
DEEP = 10_000


@pytest.fixture
def stacker(station_client):
    return station_client("PR-STK-1")


@pytest.fixture
def cells(proto_batch):
    return list(proto_batch.cells.order_by("position"))


@pytest.fixture
def good(cells, result_for):
    return result_for(cells[0], "stacking")


def assert_refused(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code
    assert set(body) == {"code", "detail", "errors"}
    assert not InboxEntry.objects.exists()
    return body


def refused_fields(response) -> dict[str, list[str]]:
    """The field errors of the one result of a refused request."""
    body = assert_refused(response, 400, "invalid")
    assert list(body["errors"]["results"]) == ["0"]
    return body["errors"]["results"]["0"]


def post_raw(client, body: bytes, url: str = RESULTS_URL):
    return client.http.generic("POST", url, body, content_type="application/json")


# ---------------------------------------------------------------- times


@pytest.mark.parametrize(
    "occurred_at",
    [
        "0001-01-01T00:00:00+09:00",  # 1 BC in UTC: stored by PostgreSQL, unreadable by Python
        "9999-12-31T23:59:59-14:00",  # year 10000 in UTC: the same
        "1999-12-31T23:59:59Z",
        "future",  # two days ahead: a station clock that is wrong, not fast
    ],
)
def test_results_refuse_a_time_outside_the_window(stacker, good, occurred_at):
    if occurred_at == "future":
        occurred_at = (timezone.now() + timedelta(days=2)).isoformat()
    good["occurred_at"] = occurred_at
    errors = refused_fields(stacker.post_results(good))
    assert list(errors) == ["occurred_at"]
    assert "2000-01-01" in errors["occurred_at"][0]


@pytest.mark.parametrize("started_at", ["0001-01-01T00:00:00+09:00", "1999-12-31T23:59:59Z"])
def test_results_refuse_a_start_outside_the_window(stacker, good, started_at):
    good["started_at"] = started_at
    assert list(refused_fields(stacker.post_results(good))) == ["started_at"]


@pytest.mark.parametrize("occurred_at", ["ahead", "2000-01-01T09:00:00+09:00"])
def test_results_accept_a_time_at_the_edges_of_the_window(stacker, good, occurred_at):
    if occurred_at == "ahead":  # a station clock running 23 hours fast
        occurred_at = (timezone.now() + timedelta(hours=23)).isoformat()
    good["occurred_at"] = occurred_at
    assert stacker.post_results(good).status_code == 202
    assert InboxEntry.objects.count() == 1


# ---------------------------------------------------------------- control characters and NUL


def _curve(unit: str = "MPa") -> dict[str, Any]:
    return {"t_s": [0.0, 1.0], "values": [0.0, 1.0], "unit": unit}


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"event_id": "E-1\u0000"}, "event_id"),
        ({"cell": "PROTO\u0000-0001"}, "cell"),
        ({"measurements": {"stack_mass\u0000_g": 58.0}}, "measurements"),
        ({"equipment": "FIX\u00003"}, "equipment"),
        ({"operator": "badge\u000042"}, "operator"),
        ({"material_lots": {"cathode": "CAT-2611-A-01\u0000"}}, "material_lots"),
        ({"material_lots": {"cath\u0000ode": "CAT-2611-A-01"}}, "material_lots"),
        ({"curves": {"press\u0000ure": _curve()}}, "curves"),
        ({"curves": {"pressure": _curve("M\u0000Pa")}}, "curves.pressure.unit"),
    ],
)
def test_results_refuse_nul_in_any_string(stacker, good, fields, named):
    errors = refused_fields(stacker.post_results({**good, **fields}))
    assert list(errors) == [named]
    assert "not allowed" in errors[named][0]


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"event_id": "E-1\nE-2"}, "event_id"),
        ({"event_id": "E-1\n"}, "event_id"),  # a final newline too ("$" would let it through)
        ({"event_id": "E-1\r"}, "event_id"),
        ({"cell": "PROTO\t0001"}, "cell"),
        ({"equipment": "FIX\u001f3"}, "equipment"),
        ({"measurements": {"stack\bmass_g": 58.0}}, "measurements"),
        ({"material_lots": {"cathode": "CAT\f01"}}, "material_lots"),
    ],
)
def test_results_refuse_control_characters_in_identifiers_and_codes(stacker, good, fields, named):
    errors = refused_fields(stacker.post_results({**good, **fields}))
    assert errors == {named: [errors[named][0]]}
    assert "Control characters" in errors[named][0] or "A name" in errors[named][0]


def test_results_accept_escapes_that_are_no_control_characters(stacker, good):
    # A literal backslash before an "n" is no newline, and an escaped accent is a letter.
    good.update(
        equipment="C:\\new\\fixture-3", operator="Ren\u00e9", curves={"p": _curve("\u00b0C")}
    )
    assert stacker.post_results(good).status_code == 202
    payload = InboxEntry.objects.get().payload
    assert (payload["equipment"], payload["operator"]) == ("C:\\new\\fixture-3", "Ren\u00e9")


def test_results_report_each_bad_result_by_index_and_store_none(stacker, cells, result_for):
    results = [result_for(cell, "stacking") for cell in cells[:3]]
    results[1]["cell"] = "PROTO\t0002"
    results[2]["occurred_at"] = "1999-12-31T23:59:59Z"
    body = assert_refused(stacker.post_results(*results), 400, "invalid")
    assert body["errors"]["results"] == {
        "1": {"cell": [body["errors"]["results"]["1"]["cell"][0]]},
        "2": {"occurred_at": [body["errors"]["results"]["2"]["occurred_at"][0]]},
    }


# ---------------------------------------------------------------- bytes that are not JSON text


def test_results_refuse_invalid_utf8_inside_a_string(stacker, good):
    body = json.dumps({"results": [good]}).encode()
    broken = body.replace(b'"stacking-', b'"\xff\xfestacking-')
    assert broken != body
    errors = refused_fields(post_raw(stacker, broken))
    assert "UTF-8" in json.dumps(errors)


def test_results_refuse_invalid_utf8_outside_the_results(stacker, good):
    body = json.dumps({"results": [good]}).encode()[:-1] + b', "\xc3\x28": 1}'
    assert_refused(post_raw(stacker, body), 400, "invalid")


def test_results_refuse_a_lone_surrogate(stacker, good):
    body = json.dumps({"results": [good]}).replace('"stacking-', '"\\ud800stacking-')
    assert_refused(post_raw(stacker, body.encode()), 400, "invalid")


@pytest.mark.parametrize(
    "where",
    [
        b"[" * DEEP + b"]" * DEEP,
        b'{"event_id": "E-1", "measurements": ' + b'{"a": ' * DEEP + b"1" + b"}" * DEEP + b"}",
    ],
    ids=["a result", "measurements"],
)
def test_results_refuse_nesting_10000_deep(stacker, where):
    body = b'{"results": [' + where + b"]}"
    response = assert_refused(post_raw(stacker, body), 400, "invalid")
    assert "nested" in response["detail"]


# ---------------------------------------------------------------- event ids


def test_results_refuse_an_event_id_of_201_characters(stacker, good):
    good["event_id"] = "E" * 201
    assert list(refused_fields(stacker.post_results(good))) == ["event_id"]


def test_results_accept_an_event_id_as_long_as_the_inbox_holds(stacker, good):
    good["event_id"] = "E" * EVENT_ID_MAX_LENGTH
    assert stacker.post_results(good).status_code == 202
    assert stacker.status_of(good["event_id"]).json()["status"] == "pending"


def test_results_refuse_an_event_id_one_character_longer(stacker, good):
    good["event_id"] = "E" * (EVENT_ID_MAX_LENGTH + 1)
    assert list(refused_fields(stacker.post_results(good))) == ["event_id"]


def test_results_accept_an_event_id_of_200_characters(stacker, good, process_pending):
    good["event_id"] = "E" * 200
    assert stacker.post_results(good).status_code == 202
    assert process_pending()["applied"] == 1  # stored, applied and audited in full
    assert stacker.status_of("E" * 200).json()["status"] == "processed"


# ---------------------------------------------------------------- paths


@pytest.mark.parametrize("event_id", ["x%00", "x%00y", "x%0a", "E-1%0A", "x%09y", "x%01y", "x%1f"])
def test_result_status_is_404_for_a_path_with_control_characters(stacker, good, event_id):
    stacker.post_results({**good, "event_id": "E-1"})
    response = stacker.get(f"{RESULTS_URL}/{event_id}")
    assert response.status_code == 404, response.content
    assert response.json()["code"] == "not_found"


@pytest.mark.parametrize("path", ["batches", "cells", "lots"])
@pytest.mark.parametrize("code", ["x%00", "x%0a", "x%09y", "x%01"])
def test_engineers_api_is_404_for_a_code_with_control_characters(api_as, operator, path, code):
    response = api_as(operator).get(f"/api/v1/{path}/{code}")
    assert response.status_code == 404, response.content
    assert response.json()["code"] == "not_found"


# ---------------------------------------------------------------- track-in, state, cycler files


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"cell": "PROTO\u00000001"}, "cell"),
        ({"cell": "PROTO\t0001"}, "cell"),
        ({"material_lots": {"cathode": "CAT\u00002611"}}, "material_lots"),
        ({"material_lots": {"cathode": "CAT\n2611"}}, "material_lots"),
        ({"material_lots": {"cath\u0000ode": "CAT-2611-A-01"}}, "material_lots"),
        ({"material_lots": {"cath\tode": "CAT-2611-A-01"}}, "material_lots"),
    ],
)
def test_track_in_refuses_control_characters(stacker, cells, body, named):
    response = stacker.post_json(TRACK_IN, {"cell": cells[0].serial, **body})
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "invalid"
    assert list(response.json()["errors"]) == [named]


def test_track_in_refuses_nesting_10000_deep(stacker):
    body = b'{"cell": ' + b"[" * DEEP + b"]" * DEEP + b"}"
    response = post_raw(stacker, body, TRACK_IN)
    assert (response.status_code, response.json()["code"]) == (400, "invalid")


def test_an_engineers_post_refuses_nesting_10000_deep(plant, api_as, line_engineer):
    body = b'{"line": ' + b"[" * DEEP + b"]" * DEEP + b"}"
    response = api_as(line_engineer).generic(
        "POST", "/api/v1/batches", body, content_type="application/json"
    )
    assert (response.status_code, response.json()["code"]) == (400, "invalid")
    assert not Batch.objects.exists()


@pytest.mark.parametrize(
    "occurred_at",
    ["0001-01-01T00:00:00+09:00", "9999-12-31T23:59:59-14:00", "1999-12-31T23:59:59Z", "future"],
)
def test_state_refuses_a_time_outside_the_window(station_client, occurred_at):
    if occurred_at == "future":
        occurred_at = (timezone.now() + timedelta(days=2)).isoformat()
    presser = station_client("PR-PRS-1")
    before = Station.objects.get(code="PR-PRS-1").state
    response = presser.post_json(STATE, {"state": "down", "occurred_at": occurred_at})
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "invalid"
    assert list(response.json()["errors"]) == ["occurred_at"]
    assert not StationStateChange.objects.filter(station__code="PR-PRS-1").exists()
    assert Station.objects.get(code="PR-PRS-1").state == before


def test_state_refuses_nesting_10000_deep(station_client):
    body = b'{"state": "down", "reason": ' + b"[" * DEEP + b"]" * DEEP + b"}"
    response = post_raw(station_client("PR-PRS-1"), body, STATE)
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "invalid"
    assert not StationStateChange.objects.filter(station__code="PR-PRS-1").exists()


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"cell": "CELL\u00001"}, "cell"),
        ({"cell": "CELL\t1"}, "cell"),
        ({"event_id": "F\u00001"}, "event_id"),
        ({"event_id": "F\n1"}, "event_id"),
    ],
)
def test_cycler_file_refuses_control_characters(station_client, settings, tmp_path, fields, named):
    settings.MEDIA_ROOT = tmp_path
    data = {"file": SimpleUploadedFile("run.csv", b"time_s,voltage_v\n0,3.1\n")}
    data.update({"cell": "CELL-1", "event_id": "F-1", **fields})
    response = station_client("PR-FRM-1").http.post(CYCLER_FILES, data, format="multipart")
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "invalid"
    assert list(response.json()["errors"]) == [named]
    assert not InboxEntry.objects.exists()
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]  # the upload is not kept


# ---------------------------------------------------------------- rows an older release stored


def store_as_an_older_release(
    station: Station, event_id: str, serial: str, occurred_at: str, payload: dict
) -> int:
    """An inbox row written straight into the table, past today's checks, with the idempotency
    key migration stations 0003 gives every row stored before it."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {InboxKey._meta.db_table} "
            "(station_id, event_id, content_hash, received_at) VALUES (%s, %s, 'old', now())",
            [station.pk, event_id],
        )
        cursor.execute(
            f"""
            INSERT INTO {InboxEntry._meta.db_table}
                (station_id, kind, event_id, cell_serial, occurred_at, content_hash, payload,
                 status, reason_code, reason, outcome, violations, attempts, received_at,
                 enqueued_at)
            VALUES (%s, 'result', %s, %s, %s::timestamptz, 'old', %s::jsonb, 'pending', '', '',
                    '', '[]'::jsonb, 0, now(), now())
            RETURNING id
            """,
            [station.pk, event_id, serial, occurred_at, json.dumps(payload)],
        )
        return cursor.fetchone()[0]


@pytest.fixture
def poisoned_line(stacker, cells, result_for, stations) -> dict[str, str]:
    """Good stacking results sent by the station, and between them rows an older release stored:
    times Python cannot read, a payload that is not a result, a reading the step engine cannot
    take, a start before 2000. Returns the event id of each with the state it must end in."""
    station = stations["PR-STK-1"]
    now = timezone.now().isoformat()
    reading = result_for(cells[0], "stacking")["measurements"]
    poison = {
        "year-1": ("0001-01-01T00:00:00+09:00", {"measurements": reading}),
        "year-9999": ("9999-12-31T23:59:59-14:00", {"measurements": reading}),
        "not-a-result": (now, {"measurements": [1, 2]}),
        "bad-reading": (now, {"measurements": {**reading, "stack_mass_g": "heavy"}}),
        "started-year-1": (
            now,
            {"measurements": reading, "started_at": "0001-01-01T00:00:00+09:00"},
        ),
    }
    expected = {}
    for index, (event_id, (occurred_at, payload)) in enumerate(poison.items()):
        good = result_for(cells[2 * index], "stacking", event_id=f"good-{index}")
        assert stacker.post_results(good).status_code == 202
        expected[good["event_id"]] = ("processed", "")
        store_as_an_older_release(
            station, event_id, cells[2 * index + 1].serial, occurred_at, payload
        )
        expected[event_id] = ("rejected", "unreadable")
    expected["bad-reading"] = ("rejected", "processing_error")
    return expected


def _states() -> dict[str, tuple[str, str]]:
    return {
        event_id: (status, reason_code)
        for event_id, status, reason_code in InboxEntry.objects.values_list(
            "event_id", "status", "reason_code"
        )
    }


def _lists_answer(signed_in, api_as, operator, state: str) -> list[str]:
    page = signed_in(operator).get(reverse("unapplied-results"), {"state": state})
    assert page.status_code == 200
    api = api_as(operator).get("/api/v1/station-results", {"state": state})
    assert api.status_code == 200, api.content
    return sorted(row["event_id"] for row in api.json()["results"])


def test_poison_rows_are_rejected_alone_and_the_good_ones_applied(
    poisoned_line, process_pending, stacker, signed_in, api_as, operator
):
    assert _lists_answer(signed_in, api_as, operator, "pending") == sorted(poisoned_line)
    process_pending()
    assert _states() == poisoned_line
    reasons = dict(InboxEntry.objects.values_list("event_id", "reason"))
    assert "0001-12-31 15:00:00+00 BC" in reasons["year-1"]
    assert "started_at" in reasons["started-year-1"]
    assert "heavy" in reasons["bad-reading"]
    rejected = sorted(e for e, (state, _) in poisoned_line.items() if state == "rejected")
    assert _lists_answer(signed_in, api_as, operator, "rejected") == rejected
    assert _lists_answer(signed_in, api_as, operator, "pending") == []
    status = stacker.status_of("year-1").json()
    assert (status["status"], status["reason_code"]) == ("rejected", "unreadable")


def test_a_wake_up_task_taking_poison_rows_along_applies_the_rest(poisoned_line, stations):
    first = InboxEntry.objects.filter(event_id="good-0").values_list("id", flat=True)
    counts = worker.process_entries(list(first), line_code=stations["PR-STK-1"].line.code)
    assert (counts["applied"], counts["rejected"]) == (5, 5)
    assert _states() == poisoned_line


def test_a_poison_row_sent_again_is_rejected_again(
    poisoned_line, process_pending, api_as, line_engineer
):
    process_pending()
    body = {"results": [{"station": "PR-STK-1", "event_id": "year-9999"}], "reason": "retry"}
    response = api_as(line_engineer).post("/api/v1/station-results/requeue", body, format="json")
    assert (response.status_code, response.json()) == (200, {"requeued": 1})
    process_pending()
    assert _states()["year-9999"] == ("rejected", "unreadable")


def test_a_cycler_upload_with_a_content_length_that_is_no_number_is_400(station_client):
    former = station_client("PR-FRM-1")
    response = former.http.generic(
        "POST",
        "/api/v1/station/cycler-files",
        b"--x--",
        content_type="multipart/form-data; boundary=x",
        CONTENT_LENGTH="twelve",
    )
    assert (response.status_code, response.json()["code"]) == (400, "invalid")
    assert not InboxEntry.objects.exists()
