"""The served OpenAPI schema documents the station API's bodies exactly: real requests and
responses validate against it (results are validated by msgspec, documented by serializers)."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from stations.api.views import RESULT_EXAMPLE
from stations.schema import decode_results

STATION_PATHS = {
    "/api/v1/station",
    "/api/v1/station/track-in",
    "/api/v1/station/results",
    "/api/v1/station/results/{event_id}",
    "/api/v1/station/state",
    "/api/v1/station/cycler-files",
}


def to_json_schema(node: Any) -> Any:
    """OpenAPI 3.0's `nullable` as JSON Schema's null type."""
    if isinstance(node, list):
        return [to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: to_json_schema(value) for key, value in node.items()}
    if node.pop("nullable", False):
        node = {"anyOf": [node, {"type": "null"}]}
    return node


@pytest.fixture(scope="module")
def schema(django_db_blocker) -> dict:
    from django.db import connections
    from django.test import Client

    with django_db_blocker.unblock():
        try:
            response = Client().get("/api/schema/", {"format": "json"})
        finally:
            # Opened outside any test's database handling, the (persistent) connection would
            # outlive the run and keep the test database from being dropped.
            connections.close_all()
    assert response.status_code == 200
    return response.json()


def validator(schema: dict, path: str, method: str, status: str | None = None):
    operation = schema["paths"][path][method]
    if status is None:
        body = operation["requestBody"]["content"]["application/json"]["schema"]
    else:
        body = operation["responses"][status]["content"]["application/json"]["schema"]
    document = to_json_schema({**body, "components": schema["components"]})
    return jsonschema.Draft7Validator(document)


def test_schema_documents_every_station_endpoint(schema):
    assert STATION_PATHS <= set(schema["paths"])
    assert (
        "multipart/form-data"
        in (schema["paths"]["/api/v1/station/cycler-files"]["post"]["requestBody"]["content"])
    )


def test_schema_lists_the_error_statuses_of_results(schema):
    responses = schema["paths"]["/api/v1/station/results"]["post"]["responses"]
    assert {"202", "400", "401", "409", "413", "415"} <= set(responses)


def test_result_examples_valid_for_msgspec_are_valid_for_the_schema(
    schema, proto_batch, result_for
):
    full = result_for(proto_batch.cells.first(), "pressing", curves=True, verdict="fail")
    full["material_lots"] = {"cathode": "CAT-2611-A-01"}
    full["equipment"] = "PR-CIP-1-cycle-7"
    full["defects"] = ["short"]
    body = {"results": [RESULT_EXAMPLE, full, {**RESULT_EXAMPLE, "verdict": None}]}
    import json

    decode_results(json.dumps(body).encode())  # the server's own validation accepts it
    validator(schema, "/api/v1/station/results", "post").validate(body)


def test_result_examples_refused_by_msgspec_are_refused_by_the_schema(schema):
    check = validator(schema, "/api/v1/station/results", "post")
    for bad in (
        {"results": []},
        {"results": [{k: v for k, v in RESULT_EXAMPLE.items() if k != "cell"}]},
        {"results": [{**RESULT_EXAMPLE, "verdict": "ok"}]},
        {"results": [{**RESULT_EXAMPLE, "measurements": {"x": "1"}}]},
        {"results": [{**RESULT_EXAMPLE, "defects": ["dented"]}]},
    ):
        assert not check.is_valid(bad), bad


def test_station_responses_match_the_schema(schema, station_client, proto_batch, result_for):
    stacker = station_client("PR-STK-1")
    cell = proto_batch.cells.first()

    def check(path: str, method: str, status: str, response) -> None:
        assert str(response.status_code) == status, response.content
        validator(schema, path, method, status).validate(response.json())

    check("/api/v1/station", "get", "200", stacker.get("/api/v1/station"))
    check(
        "/api/v1/station/track-in",
        "post",
        "200",
        stacker.post_json("/api/v1/station/track-in", {"cell": cell.serial}),
    )
    check(
        "/api/v1/station/track-in",
        "post",
        "404",
        stacker.post_json("/api/v1/station/track-in", {"cell": "NOPE"}),
    )
    result = result_for(cell, "stacking", event_id="E-1")
    check("/api/v1/station/results", "post", "202", stacker.post_results(result))
    check(
        "/api/v1/station/results",
        "post",
        "400",
        stacker.post_results({**result, "extra": 1}),
    )
    check(
        "/api/v1/station/results",
        "post",
        "409",
        stacker.post_results({**result, "cell": "OTHER"}),
    )
    check("/api/v1/station/results/{event_id}", "get", "200", stacker.status_of("E-1"))
    check(
        "/api/v1/station/state",
        "post",
        "202",
        stacker.post_json("/api/v1/station/state", {"state": "running"}),
    )


def test_the_schema_is_generated_without_warnings(db, tmp_path):
    # A warning is a schema that says less than it should (an unnamed choice set, a field of
    # unknown type): the generator fails on any.
    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "s.yml"))
