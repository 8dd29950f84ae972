"""The engineers' API (v1) per API.md: paths, fields, codes; role permissions as on the pages;
bad input answered with the exact status and code, and nothing written."""

from __future__ import annotations

import pytest

from audit.models import Event
from batches.models import Batch, Cell, Hold
from batches.services import hold_batch, hold_cell

NEW_BATCH = {
    "line": "proto",
    "design": "SSB-5AH-P1",
    "route": "std",
    "quantity": 4,
    "material_lots": {"cathode": "CAT-2611-A-01", "electrolyte": "SE-2611-01"},
}


def written() -> tuple[int, int, int, int]:
    return (
        Batch.objects.count(),
        Cell.objects.count(),
        Hold.objects.count(),
        Event.objects.count(),
    )


# ---------------------------------------------------------------- authentication and roles


def test_no_credentials_is_401_not_authenticated(plant, api_as):
    response = api_as(None).get("/api/v1/lines")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_a_bad_personal_token_is_401(plant, api_as):
    client = api_as(None)
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-key")
    assert client.get("/api/v1/lines").status_code == 401


def test_a_station_token_is_not_accepted(plant, stations, api_as):
    from stations.services import issue_station_token

    key = issue_station_token(stations["PR-STK-1"], by="test")
    client = api_as(None)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert client.get("/api/v1/batches").status_code == 401


def test_session_auth_works_for_the_browser(plant, signed_in, operator):
    assert signed_in(operator).get("/api/v1/lines").status_code == 200


READS = [
    "/api/v1/lines",
    "/api/v1/batches",
    "/api/v1/batches/{batch}",
    "/api/v1/cells/{cell}",
    "/api/v1/lots",
    "/api/v1/lots/CAT-2611-A-01",
    "/api/v1/holds",
    "/api/v1/station-results",
]


def test_every_read_is_allowed_to_an_operator_and_refused_to_an_outsider(
    proto_batch, api_as, operator, outsider
):
    cell = proto_batch.cells.first()
    for template in READS:
        url = template.format(batch=proto_batch.code, cell=cell.serial)
        assert api_as(operator).get(url).status_code == 200, url
        refused = api_as(outsider).get(url)
        assert refused.status_code == 403, url
        assert refused.json()["code"] == "permission_denied"


@pytest.mark.parametrize(
    ("persona", "status"),
    [
        ("operator", 403),
        ("quality_engineer", 403),
        ("outsider", 403),
        ("line_engineer", 201),
        ("admin_persona", 201),
    ],
)
def test_creating_a_batch_needs_the_line_engineer_role(plant, api_as, request, persona, status):
    before = written()
    response = api_as(request.getfixturevalue(persona)).post(
        "/api/v1/batches", NEW_BATCH, format="json"
    )
    assert response.status_code == status
    if status == 403:
        assert response.json()["code"] == "permission_denied"
        assert written() == before


@pytest.mark.parametrize(
    ("persona", "status"),
    [
        ("operator", 403),
        ("outsider", 403),
        ("line_engineer", 201),
        ("quality_engineer", 201),
        ("admin_persona", 201),
    ],
)
def test_holding_a_batch_needs_a_holding_role(proto_batch, api_as, request, persona, status):
    before = written()
    response = api_as(request.getfixturevalue(persona)).post(
        f"/api/v1/batches/{proto_batch.code}/hold", {"reason": "SE lot suspect"}, format="json"
    )
    assert response.status_code == status
    if status == 403:
        assert written() == before


@pytest.mark.parametrize(
    ("persona", "status"),
    [
        ("operator", 403),
        ("outsider", 403),
        ("line_engineer", 403),
        ("quality_engineer", 200),
        ("admin_persona", 200),
    ],
)
def test_releasing_a_hold_needs_the_quality_engineer_role(
    proto_batch, line_engineer, api_as, request, persona, status
):
    hold = hold_batch(proto_batch, by=line_engineer, reason="suspect")
    before = written()
    response = api_as(request.getfixturevalue(persona)).post(
        f"/api/v1/holds/{hold.pk}/release",
        {"disposition": "release", "reason": "checked"},
        format="json",
    )
    assert response.status_code == status
    hold.refresh_from_db()
    assert hold.status == ("closed" if status == 200 else "open")
    if status == 403:
        assert written() == before


# ---------------------------------------------------------------- reads


def test_lines_list_stations_routes_and_designs(plant, proto_batch, api_as, operator):
    body = api_as(operator).get("/api/v1/lines").json()
    assert set(body) == {"count", "next", "previous", "results"}
    proto = next(line for line in body["results"] if line["code"] == "proto")
    assert set(proto) >= {"code", "name", "site", "stations", "routes", "designs"}
    assert {"code": "PR-STK-1", "kind": "stacking", "state": "idle"} in proto["stations"]
    assert {"code": "std", "steps": ["stacking", "pressing", "formation"]} in proto["routes"]
    assert proto["designs"] == ["SSB-5AH-P1"]


def test_batches_filter_by_line_and_status(plant, proto_batch, api_as, operator):
    client = api_as(operator)

    def codes(query: str) -> list[str]:
        return [b["code"] for b in client.get(f"/api/v1/batches{query}").json()["results"]]

    assert codes("?line=proto") == [proto_batch.code]
    assert codes("?line=yokohama") == []
    assert codes("?status=planned") == [proto_batch.code]
    assert codes("?status=in_progress") == []


def test_a_batch_lists_its_cells_with_status_and_step(proto_batch, line_engineer, api_as, operator):
    hold_cell(proto_batch.cells.get(position=2), by=line_engineer, reason="dent")
    body = api_as(operator).get(f"/api/v1/batches/{proto_batch.code}").json()
    assert body["code"] == proto_batch.code and body["status"] == "planned"
    assert body["cells"][0] == {
        "serial": f"{proto_batch.code}-0001",
        "status": "planned",
        "step": "stacking",
    }
    assert body["cells"][1]["status"] == "on_hold"
    assert len(body["cells"]) == 10


def test_a_cell_shows_genealogy_and_runs_in_route_order_with_judged_measurements(
    proto_batch, stations, record, api_as, operator
):
    cell = proto_batch.cells.get(position=1)
    record(cell, stations["PR-STK-1"], material_lots={"cathode": "CAT-2611-A-01"})
    record(cell, stations["PR-PRS-1"], measurements={"peak_pressure_mpa": 800.0})
    body = api_as(operator).get(f"/api/v1/cells/{cell.serial}").json()
    assert body["serial"] == cell.serial and body["batch"] == proto_batch.code
    assert body["status"] == "on_hold"  # the out-of-spec pressing held it
    assert body["step"] == "pressing"
    assert body["genealogy"] == {"cathode": "CAT-2611-A-01"}
    assert [run["step"] for run in body["runs"]] == ["stacking", "pressing"]
    pressing = body["runs"][1]
    assert pressing["station"] == "PR-PRS-1" and pressing["verdict"] == "fail"
    assert pressing["recipe_version"] == 2
    assert pressing["measurements"]["peak_pressure_mpa"] == {
        "value": 800.0,
        "unit": "MPa",
        "min": 375.0,
        "max": 700.0,
        "in_spec": False,
    }


def test_lots_filter_by_role_and_status_and_list_the_cells_that_consumed_them(
    proto_batch, stations, record, api_as, operator
):
    cell = proto_batch.cells.get(position=1)
    record(cell, stations["PR-STK-1"], material_lots={"electrolyte": "SE-2611-02"})
    client = api_as(operator)
    roles = {lot["role"] for lot in client.get("/api/v1/lots?role=electrolyte").json()["results"]}
    assert roles == {"electrolyte"}
    assert client.get("/api/v1/lots?status=rejected").json()["count"] == 0
    body = client.get("/api/v1/lots/SE-2611-02").json()
    assert body["code"] == "SE-2611-02" and body["role"] == "electrolyte"
    assert body["cells"] == [cell.serial]


def test_holds_filter_by_status(proto_batch, line_engineer, quality_engineer, api_as, operator):
    first = hold_batch(proto_batch, by=line_engineer, reason="one")
    hold_batch(proto_batch, by=line_engineer, reason="two")
    api_as(quality_engineer).post(
        f"/api/v1/holds/{first.pk}/release", {"disposition": "rework", "reason": "x"}, format="json"
    )
    client = api_as(operator)
    assert [h["reason"] for h in client.get("/api/v1/holds?status=open").json()["results"]] == [
        "two"
    ]
    closed = client.get("/api/v1/holds?status=closed").json()["results"]
    assert [(h["id"], h["disposition"]) for h in closed] == [(first.pk, "rework")]


# ---------------------------------------------------------------- writes


def test_creating_a_batch_answers_201_with_its_code_and_cells(plant, api_as, line_engineer):
    response = api_as(line_engineer).post("/api/v1/batches", NEW_BATCH, format="json")
    assert response.status_code == 201
    body = response.json()
    batch = Batch.objects.get(code=body["code"])
    assert body["cells"] == [f"{batch.code}-{n:04d}" for n in range(1, 5)]
    assert batch.created_by == line_engineer
    assert (
        dict(batch.planned_materials.values_list("role", "lot__code")) == NEW_BATCH["material_lots"]
    )


def test_holding_a_batch_answers_201_with_the_hold(proto_batch, api_as, line_engineer):
    response = api_as(line_engineer).post(
        f"/api/v1/batches/{proto_batch.code}/hold", {"reason": "SE lot suspect"}, format="json"
    )
    assert response.status_code == 201
    body = response.json()
    assert {k: body[k] for k in ("scope", "target", "reason", "status", "opened_by")} == {
        "scope": "batch",
        "target": proto_batch.code,
        "reason": "SE lot suspect",
        "status": "open",
        "opened_by": line_engineer.username,
    }
    assert body["disposition"] == "" and body["id"] == Hold.objects.get().pk
    assert "opened_at" in body


def test_releasing_a_hold_answers_200_with_the_closed_hold(
    proto_batch, line_engineer, api_as, quality_engineer
):
    hold = hold_batch(proto_batch, by=line_engineer, reason="suspect")
    response = api_as(quality_engineer).post(
        f"/api/v1/holds/{hold.pk}/release", {"disposition": "scrap", "reason": "wet"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["status"] == "closed" and response.json()["disposition"] == "scrap"
    assert set(proto_batch.cells.values_list("status", flat=True)) == {"scrapped"}


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**NEW_BATCH, "quantity": 0}, "quantity"),
        ({**NEW_BATCH, "quantity": 10001}, "quantity"),
        ({**NEW_BATCH, "quantity": "many"}, "quantity"),
        ({k: v for k, v in NEW_BATCH.items() if k != "line"}, "line"),
        ({**NEW_BATCH, "line": "nowhere"}, "line"),
        ({**NEW_BATCH, "design": "NO-SUCH-DESIGN"}, "design"),
        ({**NEW_BATCH, "route": "pilot"}, "route"),  # a route of the other line
        ({**NEW_BATCH, "material_lots": {"flux": "CAT-2611-A-01"}}, "material_lots"),
        ({**NEW_BATCH, "material_lots": ["CAT-2611-A-01"]}, "material_lots"),
    ],
)
def test_a_bad_batch_is_400_invalid_with_the_field_and_nothing_written(
    plant, api_as, line_engineer, body, field
):
    before = written()
    response = api_as(line_engineer).post("/api/v1/batches", body, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert field in response.json()["errors"]
    assert written() == before


@pytest.mark.parametrize(
    ("lots", "code"),
    [({"cathode": "NO-SUCH-LOT"}, "unknown_lot"), ({"cathode": "SE-2611-01"}, "wrong_lot_role")],
)
def test_a_batch_with_a_bad_lot_gets_the_service_code_and_nothing_written(
    plant, api_as, line_engineer, lots, code
):
    before = written()
    response = api_as(line_engineer).post(
        "/api/v1/batches", {**NEW_BATCH, "material_lots": lots}, format="json"
    )
    assert (response.status_code, response.json()["code"]) == (400, code)
    assert written() == before


def test_malformed_json_is_400_invalid(plant, api_as, line_engineer):
    response = api_as(line_engineer).generic(
        "POST", "/api/v1/batches", "{not json", content_type="application/json"
    )
    assert (response.status_code, response.json()["code"]) == (400, "invalid")


@pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": None}])
def test_a_hold_without_a_reason_is_400_invalid_and_nothing_written(
    proto_batch, api_as, line_engineer, body
):
    before = written()
    response = api_as(line_engineer).post(
        f"/api/v1/batches/{proto_batch.code}/hold", body, format="json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid" and "reason" in response.json()["errors"]
    assert written() == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"disposition": "forget", "reason": "x"}, "disposition"),
        ({"reason": "x"}, "disposition"),
        ({"disposition": "release"}, "reason"),
        ({"disposition": "release", "reason": ""}, "reason"),
        ({"disposition": "rework", "reason": "x", "rework_step": "baking"}, "rework_step"),
    ],
)
def test_a_bad_release_is_400_invalid_and_the_hold_stays_open(
    proto_batch, line_engineer, api_as, quality_engineer, body, field
):
    hold = hold_batch(proto_batch, by=line_engineer, reason="suspect")
    before = written()
    response = api_as(quality_engineer).post(
        f"/api/v1/holds/{hold.pk}/release", body, format="json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid" and field in response.json()["errors"]
    assert written() == before


def test_releasing_a_closed_hold_is_409_invalid_transition(
    proto_batch, line_engineer, api_as, quality_engineer
):
    hold = hold_batch(proto_batch, by=line_engineer, reason="suspect")
    client = api_as(quality_engineer)
    url = f"/api/v1/holds/{hold.pk}/release"
    client.post(url, {"disposition": "release", "reason": "ok"}, format="json")
    before = written()
    response = client.post(url, {"disposition": "scrap", "reason": "again"}, format="json")
    assert (response.status_code, response.json()["code"]) == (409, "invalid_transition")
    assert written() == before


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", "/api/v1/batches/NO-SUCH-BATCH"),
        ("get", "/api/v1/cells/NO-SUCH-CELL"),
        ("get", "/api/v1/lots/NO-SUCH-LOT"),
        ("post", "/api/v1/batches/NO-SUCH-BATCH/hold"),
        ("post", "/api/v1/holds/999999/release"),
    ],
)
def test_an_unknown_code_is_404_not_found(plant, api_as, admin_persona, method, url):
    before = written()
    body = {"reason": "x", "disposition": "release"}
    response = getattr(api_as(admin_persona), method)(url, body, format="json")
    assert (response.status_code, response.json()["code"]) == (404, "not_found")
    assert written() == before


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/batches?status=lost",
        "/api/v1/lots?role=flux",
        "/api/v1/holds?status=maybe",
        "/api/v1/station-results?state=lost",
    ],
)
def test_a_bad_filter_value_is_400_invalid(plant, api_as, operator, url):
    response = api_as(operator).get(url)
    assert (response.status_code, response.json()["code"]) == (400, "invalid")


def test_the_engineer_endpoints_are_in_the_openapi_schema(plant, signed_in, operator):
    schema = signed_in(operator).get("/api/schema/", {"format": "json"}).json()
    paths = schema["paths"]
    assert set(paths) >= {
        "/api/v1/lines",
        "/api/v1/batches",
        "/api/v1/batches/{code}",
        "/api/v1/batches/{code}/hold",
        "/api/v1/cells/{serial}",
        "/api/v1/lots",
        "/api/v1/lots/{code}",
        "/api/v1/holds",
        "/api/v1/holds/{id}/release",
        "/api/v1/station-results",
        "/api/v1/station-results/requeue",
    }
    assert set(paths["/api/v1/batches"]) >= {"get", "post"}
    filters = {p["name"] for p in paths["/api/v1/batches"]["get"]["parameters"]}
    assert {"line", "status", "page"} <= filters
    assert "201" in paths["/api/v1/batches/{code}/hold"]["post"]["responses"]


def test_a_method_an_endpoint_does_not_have_is_405_for_the_signed_in_and_401_for_others(
    proto_batch, api_as, quality_engineer
):
    response = api_as(quality_engineer).get("/api/v1/holds/1/release")
    assert (response.status_code, response.json()["code"]) == (405, "method_not_allowed")
    assert "POST" in response["Allow"]
    assert api_as(None).get("/api/v1/holds/1/release").status_code == 401


def test_a_rework_sends_back_only_the_cells_that_did_the_step_named(
    proto_batch, line_engineer, api_as, quality_engineer, stations, record
):
    cells = list(proto_batch.cells.order_by("position"))
    for cell in cells[:3]:
        record(cell, stations["PR-STK-1"])
    record(cells[0], stations["PR-PRS-1"], equipment_ref="L1")
    hold = hold_batch(proto_batch, by=line_engineer, reason="suspect")
    response = api_as(quality_engineer).post(
        f"/api/v1/holds/{hold.pk}/release",
        {"disposition": "rework", "reason": "re-stack", "rework_step": "stacking"},
        format="json",
    )
    assert response.status_code == 200 and response.json()["found_at"] == ""
    back = {
        c.serial: c.next_step.station_kind
        for c in Cell.objects.filter(pk__in=[c.pk for c in cells[:3]])
    }
    assert back == {c.serial: "stacking" for c in cells[:3]}
    # The seven that never stacked were not sent anywhere: still planned, still at stacking.
    assert set(
        Cell.objects.filter(pk__in=[c.pk for c in cells[3:]]).values_list("status", flat=True)
    ) == {"planned"}
