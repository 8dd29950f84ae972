"""Every operation of the served OpenAPI schema fuzzed by schemathesis, once with a station's token
and once with an engineer's personal token (the admin role: every permission): no answer is a
server error, every status is one the schema documents, and every body has the documented
content type and shape. Then what fuzzing cannot reach (the throttles, a database that is down,
pages, empty text) is checked to be documented on every operation.

In process, not against a live gunicorn (tests/processes.py): schemathesis calls the same WSGI
application, middleware and all, inside the test's transaction on the real PostgreSQL. So what the
fuzzing writes (batches, holds, results in the inbox) is rolled back, nothing reaches a worker
(no commit, no task), and no process start-up or port is spent; gunicorn's own HTTP parsing and
the runtime database role are the process tests' to cover.

Bounded: a fixed number of examples per operation (about a minute for the two runs on 2 cores)
and a fixed seed. `API_FUZZ_EXAMPLES` and `API_FUZZ_SEED` change them for a longer exploration.
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from uuid import uuid4

import pytest
import schemathesis
from django.contrib.auth.models import User
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.utils import timezone
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from knox.models import AuthToken
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from batches.models import Batch, Hold, MaterialLot
from batches.services import hold_lot
from lines.models import CellDesign, Line, Route, Station
from stations import intake, worker
from stations.models import InboxEntry
from stations.schema import decode_results
from stations.services import issue_station_token

EXAMPLES = int(os.environ.get("API_FUZZ_EXAMPLES", "50"))
SEED = int(os.environ.get("API_FUZZ_SEED", "13"))
# Far above anything the fuzzing sends: the throttles still count every request (and the 429
# stays documented), they just never refuse one here.
UNTHROTTLED = "1000000/s"

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture
def _node_id_for_schemathesis(request):
    # schemathesis 4.32's lazy schema renames the test per operation through Node._nodeid, an
    # attribute pytest 9.2 no longer has (its node id is Node._id now).
    request.node._nodeid = request.node.nodeid


@pytest.fixture
def in_process_app(settings, tmp_path):
    """The WSGI application, called within the test's transaction: as Django's test client does,
    a request's start and end must not close the connection the transaction lives on."""
    settings.MEDIA_ROOT = tmp_path
    # The throttles' counts under a prefix of this run's: no other test's block carries over.
    settings.CACHES = {"default": {**settings.CACHES["default"], "KEY_PREFIX": f"fuzz-{uuid4()}"}}
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": dict.fromkeys(
            settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], UNTHROTTLED
        ),
    }
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield get_wsgi_application()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


FUZZING_STATION = "PR-STK-1"  # the proto line's stacker: the batch's cells are at its step


def _plant_in_use(batch: Batch, by: User) -> None:
    """What the operations can find besides the seeded master data: open holds to release, and
    one result the workers rejected (unknown cell) and one they applied, to look up or requeue."""
    for lot in MaterialLot.objects.order_by("-code")[:3]:
        hold_lot(lot, by=by, reason="fuzzing: a hold to release")
    station = Station.objects.get(code=FUZZING_STATION)
    now = timezone.now().isoformat()
    results = [
        {"event_id": "E-1", "cell": "NO-SUCH-CELL", "occurred_at": now},
        {"event_id": "E-2", "cell": batch.cells.order_by("position").first().serial,
         "occurred_at": now, "measurements": {"x": 1.0}},
    ]  # fmt: skip
    intake.accept_results(station, decode_results(json.dumps({"results": results}).encode()))
    worker.process_entries(list(InboxEntry.objects.values_list("pk", flat=True)))


def _known_values(batch: Batch) -> dict[str, list]:
    """Codes of real objects, so that a share of the requests finds what it names."""
    batches = list(Batch.objects.values_list("code", flat=True))
    lots = list(MaterialLot.objects.order_by("code").values_list("code", flat=True))
    return {
        "cells": list(batch.cells.values_list("serial", flat=True)),
        "codes": batches + lots,  # {code} is a batch's or a lot's, by path
        "holds": list(Hold.objects.values_list("pk", flat=True)),
        "lines": list(Line.objects.values_list("code", flat=True)),
        "designs": list(CellDesign.objects.values_list("code", flat=True)),
        "routes": list(Route.objects.values_list("code", flat=True).distinct()),
        "stations": [FUZZING_STATION],
        "event_ids": ["E-1", "E-2"],
    }


# Where the known values go in requests (schemathesis' dictionary bindings), half of the time.
BINDINGS = {
    "path.serial": "cells",
    "path.code": "codes",
    "path.id": "holds",
    "path.event_id": "event_ids",
    "body.cell": "cells",
    "body.line": "lines",
    "body.design": "designs",
    "body.route": "routes",
    "body.results[*].cell": "cells",
    "body.results[*].event_id": "event_ids",
    "body.results[*].station": "stations",
    "body.event_id": "event_ids",
    "query.line": "lines",
    "query.station": "stations",
}


@pytest.fixture(params=["station", "engineer"])
def api_schema(request, in_process_app, proto_batch, admin_persona, line_engineer):
    _plant_in_use(proto_batch, line_engineer)
    if request.param == "station":
        token = issue_station_token(Station.objects.get(code=FUZZING_STATION), by="test")
        authorization = f"Bearer {token}"
    else:
        _, key = AuthToken.objects.create(user=admin_persona)
        authorization = f"Token {key}"
    known = _known_values(proto_batch)
    config = SchemathesisConfig.from_dict(
        {
            "seed": SEED,
            "headers": {"Authorization": authorization},
            "generation": {"max-examples": EXAMPLES},
            "phases": {"stateful": {"enabled": False}},
            "dictionaries": {name: {"values": values} for name, values in known.items()},
            "parameters": {
                key: {"dictionary": name, "probability": 0.5} for key, name in BINDINGS.items()
            },
        }
    )
    return schemathesis.openapi.from_wsgi("/api/schema/?format=json", in_process_app, config=config)


@schema.parametrize()
@hypothesis_settings(
    max_examples=EXAMPLES,
    deadline=timedelta(seconds=10),  # per request; far above what any takes here
    database=None,  # no .hypothesis/ directory: each run starts from the seed alone
    suppress_health_check=list(HealthCheck),  # slow data generation is not the API's fault
)
@pytest.mark.usefixtures("_node_id_for_schemathesis")
def test_every_operation_answers_as_documented(case):
    case.call_and_validate(checks=CHECKS)


# ---------------------------------------------------------------- what fuzzing cannot reach
# The throttles are lifted and the database never goes down above: their answers are checked
# to be documented here, with the other promises the schema makes about every operation.


@pytest.fixture(scope="module")
def served_schema(django_db_blocker) -> dict:
    from django.db import connections
    from django.test import Client

    with django_db_blocker.unblock():
        try:
            response = Client().get("/api/schema/", {"format": "json"})
        finally:
            connections.close_all()  # else the test database could not be dropped
    assert response.status_code == 200
    return response.json()


def _operations(schema: dict):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            yield f"{method.upper()} {path}", operation


def _component(schema: dict, reference: dict) -> dict:
    return schema["components"]["schemas"][reference["$ref"].rsplit("/", 1)[-1]]


def _json_body(schema: dict, response: dict) -> dict:
    return _component(schema, response["content"]["application/json"]["schema"])


def test_every_operation_documents_the_database_down_and_the_throttles(served_schema):
    for label, operation in _operations(served_schema):
        responses = operation["responses"]
        assert "503" in responses, label
        if operation["security"] != [{}]:  # it reads credentials: they can fail, and be throttled
            assert {"401", "429"} <= set(responses), label


def test_every_error_answer_is_documented_in_the_error_format(served_schema):
    for label, operation in _operations(served_schema):
        for status, response in operation["responses"].items():
            if int(status) < 400:
                continue
            body = _json_body(served_schema, response)
            shapes = [body, *(_component(served_schema, one) for one in body.get("oneOf", []))]
            assert any(
                set(shape.get("properties", {})) == {"code", "detail", "errors"} for shape in shapes
            ), f"{label} {status}"


def test_every_list_documents_its_page_and_the_404_past_the_last(served_schema):
    lists = [
        (label, operation)
        for label, operation in _operations(served_schema)
        if label.startswith("GET ")
        and "application/json" in operation["responses"]["200"]["content"]  # not a download
        and set(_json_body(served_schema, operation["responses"]["200"])["properties"])
        == {"count", "next", "previous", "results"}
    ]
    assert len(lists) >= 6
    for label, operation in lists:
        assert "page" in {parameter["name"] for parameter in operation["parameters"]}, label
        assert "404" in operation["responses"], label


def test_required_text_in_a_request_is_documented_as_not_empty(served_schema):
    components = served_schema["components"]["schemas"]
    bodies = [
        _component(served_schema, content["schema"])
        for _, operation in _operations(served_schema)
        for content in operation.get("requestBody", {}).get("content", {}).values()
    ]
    bodies += [components["StationResult"], components["ResultRef"]]  # the items of a body's list
    for body in bodies:
        for name in body.get("required", []):
            field = body["properties"][name]
            if field.get("type") == "string" and not {"format", "enum"} & set(field):
                assert field.get("minLength", 0) >= 1, (body, name)
