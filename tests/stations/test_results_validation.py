"""Shape validation of POST /station/results: any malformed result refuses the whole request
with a clear 4xx and nothing is stored."""

from __future__ import annotations

import json

import pytest

from stations.models import InboxEntry
from tests.fixtures.stations import RESULTS_URL


@pytest.fixture
def stacker(station_client):
    return station_client("PR-STK-1")


@pytest.fixture
def good(proto_batch, result_for):
    return result_for(proto_batch.cells.first(), "stacking")


def assert_refused(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code
    assert set(body) == {"code", "detail", "errors"}
    assert InboxEntry.objects.count() == 0
    return body


def test_results_accepts_a_valid_result(stacker, good):
    response = stacker.post_results(good)
    assert response.status_code == 202
    assert response.json() == {"accepted": 1, "duplicates": 0}
    assert InboxEntry.objects.get().status == "pending"


def test_results_reject_malformed_json(stacker):
    response = stacker.http.generic(
        "POST", RESULTS_URL, b'{"results": [{"event_id": ', content_type="application/json"
    )
    assert_refused(response, 400, "invalid")


def test_results_reject_wrong_content_type(stacker, good):
    response = stacker.http.generic(
        "POST", RESULTS_URL, json.dumps({"results": [good]}), content_type="text/plain"
    )
    assert_refused(response, 415, "unsupported_format")


def test_results_reject_form_encoded_body(stacker, good):
    response = stacker.http.post(RESULTS_URL, {"results": "x"})  # multipart by default
    assert_refused(response, 415, "unsupported_format")


@pytest.mark.parametrize("field", ["event_id", "cell", "occurred_at"])
def test_results_reject_a_missing_required_field(stacker, good, field):
    del good[field]
    body = assert_refused(stacker.post_results(good), 400, "invalid")
    assert body["errors"] == {"results": {"0": {field: ["This field is required."]}}}


def test_results_reject_an_extra_field(stacker, good):
    good["operator_mood"] = "fine"
    body = assert_refused(stacker.post_results(good), 400, "invalid")
    assert body["errors"] == {"results": {"0": {"operator_mood": ["Unknown field."]}}}


def test_results_reject_an_extra_top_level_field(stacker, good):
    response = stacker.post_json(RESULTS_URL, {"results": [good], "station": "PR-PRS-1"})
    body = assert_refused(response, 400, "invalid")
    assert "station" in body["errors"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("measurements", {"stack_mass_g": "58.1"}),
        ("measurements", {"stack_mass_g": True}),
        ("measurements", [1, 2]),
        ("cell", 42),
        ("verdict", "ok"),
        ("defects", ["dented"]),
        ("curves", {"pressure": {"t_s": [0, 1], "values": [1]}}),
    ],
)
def test_results_reject_wrong_types(stacker, good, field, value):
    good[field] = value
    body = assert_refused(stacker.post_results(good), 400, "invalid")
    assert list(body["errors"]["results"]) == ["0"]


def test_results_report_errors_per_index_and_store_none(stacker, proto_batch, result_for):
    cells = list(proto_batch.cells.all()[:4])
    results = [result_for(cell, "stacking") for cell in cells]
    del results[1]["cell"]
    results[3]["occurred_at"] = "yesterday"
    body = assert_refused(stacker.post_results(*results), 400, "invalid")
    assert sorted(body["errors"]["results"]) == ["1", "3"]
    assert "cell" in body["errors"]["results"]["1"]
    assert "occurred_at" in body["errors"]["results"]["3"]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_results_reject_nan_and_infinity(stacker, good, literal):
    text = json.dumps({"results": [good]}).replace(
        json.dumps(good["measurements"]), f'{{"stack_mass_g": {literal}}}'
    )
    assert literal in text
    response = stacker.http.generic("POST", RESULTS_URL, text, content_type="application/json")
    assert_refused(response, 400, "invalid")


@pytest.mark.parametrize(
    "occurred_at", ["2025-01-01T09:30:00", "2025-01-01T09:30:00.123", "2025-01-01"]
)
def test_results_reject_timestamps_without_offset(stacker, good, occurred_at):
    good["occurred_at"] = occurred_at
    body = assert_refused(stacker.post_results(good), 400, "invalid")
    assert "occurred_at" in body["errors"]["results"]["0"]


def test_results_reject_an_empty_list(stacker):
    body = assert_refused(stacker.post_json(RESULTS_URL, {"results": []}), 400, "invalid")
    assert "results" in body["errors"]


def test_results_reject_1001_results(stacker, good):
    results = [{**good, "event_id": f"e-{n}"} for n in range(1001)]
    body = assert_refused(stacker.post_results(*results), 400, "invalid")
    assert "results" in body["errors"]


def test_results_accept_1000_results(stacker, good):
    results = [{**good, "event_id": f"e-{n}"} for n in range(1000)]
    assert stacker.post_results(*results).json() == {"accepted": 1000, "duplicates": 0}
    assert InboxEntry.objects.count() == 1000


def test_results_refuse_a_body_over_16_mib(stacker, good):
    padding = "x" * (16 * 1024 * 1024)
    response = stacker.post_results({**good, "event_id": padding})
    assert_refused(response, 413, "payload_too_large")


class ExplodingStream:
    """A request body that fails the test if the view reads it."""

    def read(self, *args):
        raise AssertionError("the body was read")

    readline = read


def test_results_refuse_a_declared_oversized_body_without_reading_it(stacker):
    response = stacker.http.generic(
        "POST",
        RESULTS_URL,
        b"",
        content_type="application/json",
        CONTENT_LENGTH=str(16 * 1024 * 1024 + 1),
        **{"wsgi.input": ExplodingStream()},
    )
    assert_refused(response, 413, "payload_too_large")
