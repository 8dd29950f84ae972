"""The NCR endpoints of the engineers' API, as the personas use them: the lifecycle, the list's
filters, bad input (400 `invalid`), unknown NCRs (404), refused transitions (409) and the signed
closure (403 without the role or with a wrong password), nothing written on any refusal."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from audit.models import Event
from batches.models import Hold
from batches.services import hold_batch, hold_cell
from lines.models import Line
from quality.models import NonConformance, NonConformanceAction
from tests.quality.ncr_helpers import PASSWORD, open_ncr, walk_to

YEAR = timezone.localdate().year


@pytest.fixture
def batch_hold(proto_batch, line_engineer) -> Hold:
    return hold_batch(proto_batch, by=line_engineer, reason="Cathode overhang on stacker 1")


def written() -> tuple[int, int, int, int]:
    return (
        NonConformance.objects.count(),
        NonConformanceAction.objects.count(),
        NonConformance.holds.through.objects.count(),
        Event.objects.count(),
    )


def new_ncr(**fields) -> dict:
    return {
        "title": "Cathode misaligned",
        "description": "Overhang 0.4 mm on three cells",
        "line": "proto",
        "step": "stacking",
        **fields,
    }


def test_the_lifecycle_as_the_personas_work_it(
    api_as, batch_hold, line_engineer, quality_engineer, operator
):
    lena, quinn = api_as(line_engineer), api_as(quality_engineer)
    response = lena.post(
        "/api/v1/ncrs", new_ncr(holds=[batch_hold.pk], opened_from=batch_hold.pk), format="json"
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    code = body["code"]
    assert code == f"NCR-{YEAR}-0001"
    assert body["status"] == "open" and body["next"] == ["cancelled", "contained"]
    assert [hold["id"] for hold in body["holds"]] == [batch_hold.pk]
    assert body["opened_by"] == "lena-line-engineer" and body["opened_from"] == batch_hold.pk
    assert body["signature"] is None

    url = f"/api/v1/ncrs/{code}"
    response = lena.post(f"{url}/containment", {"containment": "Batch held"}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "contained"
    response = lena.post(
        f"{url}/root-cause",
        {"category": "measurement", "five_whys": "Camera out of calibration"},
        format="json",
    )
    assert response.json()["status"] == "analysed"
    assert response.json()["root_cause"] == "measurement"
    response = quinn.post(
        f"{url}/actions",
        {
            "kind": "corrective",
            "description": "Recalibrate the camera",
            "owner": "lena-line-engineer",
            "due_date": "2026-12-04",
        },
        format="json",
    )
    assert response.status_code == 201 and response.json()["status"] == "actions"
    (action,) = response.json()["actions"]
    assert action["owner"] == "lena-line-engineer" and action["status"] == "open"
    response = lena.post(f"{url}/actions/{action['id']}/done", {"note": "done"}, format="json")
    assert response.status_code == 200
    done = response.json()["actions"][0]
    assert done["status"] == "done" and done["done_by"] == "lena-line-engineer"
    response = lena.post(f"{url}/verify", {"verification": "Gauge R&R 8 %"}, format="json")
    assert response.json()["status"] == "verification"
    assert response.json()["verified_by"] == "lena-line-engineer"

    # The line engineer may not sign it off; the operator may only read it.
    assert lena.post(f"{url}/close", {"password": PASSWORD}, format="json").status_code == 403
    assert api_as(operator).get(url).status_code == 200
    assert api_as(operator).post(f"{url}/cancel", {"reason": "x"}, format="json").status_code == 403

    response = quinn.post(
        f"{url}/close", {"password": PASSWORD, "meaning": "Approved: effective"}, format="json"
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "closed" and body["next"] == []
    assert body["signature"]["meaning"] == "Approved: effective"
    assert body["signature"]["signed_by"] == "quinn-quality"
    assert "password" not in body
    event = Event.objects.get(subject=code, verb="ncr_closed")
    assert event.actor == "quinn-quality" and event.data["signature"]["meaning"] == (
        "Approved: effective"
    )


def test_a_hold_joins_and_leaves_through_the_api(api_as, proto_batch, line_engineer, batch_hold):
    ncr = open_ncr(line_engineer)
    lena = api_as(line_engineer)
    url = f"/api/v1/ncrs/{ncr.code}/holds"
    response = lena.post(url, {"hold": batch_hold.pk}, format="json")
    assert response.status_code == 200 and len(response.json()["holds"]) == 1
    assert lena.post(url, {"hold": batch_hold.pk}, format="json").json()["code"] == (
        "hold_already_covered"
    )
    response = lena.delete(f"{url}/{batch_hold.pk}")
    assert response.status_code == 200 and response.json()["holds"] == []
    assert lena.delete(f"{url}/{batch_hold.pk}").status_code == 409
    assert lena.delete(f"{url}/999999").status_code == 404


# ---------------------------------------------------------------- the list


def test_the_list_filters_by_status_and_line(
    api_as, line_engineer, quality_engineer, operator, django_assert_max_num_queries
):
    pilot = Line.objects.exclude(code="proto").first()
    first = open_ncr(line_engineer)
    second = walk_to(open_ncr(line_engineer, line=pilot), "actions", by=line_engineer)
    third = walk_to(open_ncr(line_engineer), "cancelled", by=line_engineer, signer=quality_engineer)
    # An overdue action: due yesterday, still open.
    second.actions.update(due_date=timezone.localdate() - timedelta(days=1))
    api = api_as(operator)

    def codes(query: str) -> list[str]:
        with django_assert_max_num_queries(6):
            response = api.get(f"/api/v1/ncrs{query}")
        assert response.status_code == 200, response.json()
        return [row["code"] for row in response.json()["results"]]

    assert codes("") == [third.code, second.code, first.code]
    assert codes("?status=open") == [first.code]
    assert codes("?status=active") == [second.code, first.code]
    assert codes(f"?line={pilot.code}") == [second.code]
    assert codes("?line=proto&status=cancelled") == [third.code]
    row = api.get(f"/api/v1/ncrs?line={pilot.code}").json()["results"][0]
    assert (row["actions"], row["open_actions"], row["overdue_actions"]) == (1, 1, 1)
    assert row["status"] == "actions" and row["line"] == pilot.code


# Six, as the other lists: the token and its user, permissions, the count, the page.
def test_the_list_runs_the_same_queries_for_many_ncrs(
    api_as, line_engineer, batch_hold, django_assert_max_num_queries
):
    for _ in range(30):
        ncr = walk_to(open_ncr(line_engineer, holds=[batch_hold]), "actions", by=line_engineer)
    api = api_as(line_engineer)
    with django_assert_max_num_queries(6):
        response = api.get("/api/v1/ncrs")
    assert response.status_code == 200 and response.json()["count"] == 30
    # One NCR: itself with its people, its holds, its actions.
    with django_assert_max_num_queries(6):
        response = api.get(f"/api/v1/ncrs/{ncr.code}")
    assert response.status_code == 200 and len(response.json()["holds"]) == 1


def test_a_bad_filter_is_400(api_as, operator):
    response = api_as(operator).get("/api/v1/ncrs?status=finished")
    assert response.status_code == 400 and response.json()["code"] == "invalid"
    assert "status" in response.json()["errors"]


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (new_ncr(title=""), "title"),
        (new_ncr(description=None), "description"),
        (new_ncr(line="no-such-line"), "line"),
        (new_ncr(step="welding"), "step"),
        (new_ncr(holds=[999999]), "holds"),
        (new_ncr(holds="1"), "holds"),
        (new_ncr(opened_from=999999), "opened_from"),
        (new_ncr(title="x" * 201), "title"),
    ],
)
def test_opening_with_bad_input_is_400_and_writes_nothing(api_as, line_engineer, body, field):
    before = written()
    response = api_as(line_engineer).post("/api/v1/ncrs", body, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid" and field in response.json()["errors"]
    assert written() == before


def test_an_operator_cannot_open_one(api_as, operator):
    response = api_as(operator).post("/api/v1/ncrs", new_ncr(), format="json")
    assert response.status_code == 403 and response.json()["code"] == "permission_denied"
    assert not NonConformance.objects.exists()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", ""),
        ("post", "/containment"),
        ("post", "/root-cause"),
        ("post", "/actions"),
        ("post", "/verify"),
        ("post", "/close"),
        ("post", "/cancel"),
    ],
)
def test_an_unknown_ncr_is_404(api_as, quality_engineer, method, path):
    response = getattr(api_as(quality_engineer), method)(
        f"/api/v1/ncrs/NCR-1999-0001{path}", {}, format="json"
    )
    assert response.status_code == 404 and response.json()["code"] == "not_found"


def test_an_unknown_action_is_404(api_as, line_engineer):
    ncr = walk_to(open_ncr(line_engineer), "actions", by=line_engineer)
    response = api_as(line_engineer).post(f"/api/v1/ncrs/{ncr.code}/actions/999999/done")
    assert response.status_code == 404 and response.json()["code"] == "not_found"


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/root-cause", {"category": "luck", "five_whys": "why"}, "category"),
        ("/root-cause", {"category": "man"}, "five_whys"),
        ("/containment", {"containment": ""}, "containment"),
    ],
)
def test_a_bad_transition_body_is_400_and_writes_nothing(api_as, line_engineer, path, body, field):
    ncr = walk_to(open_ncr(line_engineer), "open", by=line_engineer)
    if path == "/root-cause":
        ncr = walk_to(ncr, "contained", by=line_engineer)
    before = written()
    response = api_as(line_engineer).post(f"/api/v1/ncrs/{ncr.code}{path}", body, format="json")
    assert response.status_code == 400 and field in response.json()["errors"]
    assert written() == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "cosmetic", "description": "x", "owner": "quinn-quality"}, "kind"),
        ({"kind": "corrective", "description": "x", "owner": "nobody"}, "owner"),
        ({"kind": "corrective", "description": "x", "owner": "quinn-quality"}, "due_date"),
    ],
)
def test_a_bad_action_is_400_and_writes_nothing(
    api_as, line_engineer, quality_engineer, body, field
):
    ncr = walk_to(open_ncr(line_engineer), "analysed", by=line_engineer)
    body = {"due_date": "2026-12-04", **body} if field != "due_date" else body
    before = written()
    response = api_as(line_engineer).post(f"/api/v1/ncrs/{ncr.code}/actions", body, format="json")
    assert response.status_code == 400 and field in response.json()["errors"]
    assert written() == before


@pytest.mark.parametrize(
    ("status", "path", "body"),
    [
        ("open", "/root-cause", {"category": "man", "five_whys": "tired"}),
        ("open", "/verify", {"verification": "fine"}),
        ("contained", "/containment", {"containment": "again"}),
        ("analysed", "/reopen", {"reason": "why not"}),
        ("actions", "/close", {"password": PASSWORD}),
        ("closed", "/cancel", {"reason": "too late"}),
        ("cancelled", "/holds", {"hold": None}),
    ],
)
def test_a_refused_transition_is_409_and_writes_nothing(
    api_as, line_engineer, quality_engineer, batch_hold, status, path, body
):
    ncr = walk_to(open_ncr(line_engineer), status, by=line_engineer, signer=quality_engineer)
    if "hold" in body:
        body = {"hold": batch_hold.pk}
    before = written()
    response = api_as(quality_engineer).post(f"/api/v1/ncrs/{ncr.code}{path}", body, format="json")
    assert response.status_code == 409 and response.json()["code"] == "invalid_transition"
    assert written() == before


def test_closing_with_an_open_action_is_409(api_as, line_engineer, quality_engineer):
    from datetime import date

    from quality import nonconformance as ncrs

    ncr = walk_to(open_ncr(line_engineer), "actions", by=line_engineer)
    ncrs.add_action(
        ncr,
        kind="preventive",
        description="FMEA",
        owner=line_engineer,
        due_date=date(2027, 1, 1),
        by=line_engineer,
    )
    ncr = walk_to(ncr, "verification", by=line_engineer)
    before = written()
    response = api_as(quality_engineer).post(
        f"/api/v1/ncrs/{ncr.code}/close", {"password": PASSWORD}, format="json"
    )
    assert response.status_code == 409 and response.json()["code"] == "actions_open"
    assert written() == before


def test_a_wrong_password_is_refused_writes_nothing_and_counts_toward_the_lockout(
    api_as, line_engineer, quality_engineer
):
    ncr = walk_to(open_ncr(line_engineer), "verification", by=line_engineer)
    quinn = api_as(quality_engineer)
    quinn.defaults["REMOTE_ADDR"] = "10.9.0.1"
    url = f"/api/v1/ncrs/{ncr.code}/close"
    before = written()
    response = quinn.post(url, {"password": "not-my-password"}, format="json")
    assert response.status_code == 403 and response.json()["code"] == "signature_invalid"
    assert written() == before
    ncr.refresh_from_db()
    assert ncr.status == "verification" and ncr.signed_by is None

    for _ in range(settings.SIGN_IN_FAILURE_LIMIT - 1):
        quinn.post(url, {"password": "not-my-password"}, format="json")
    # Locked out: the right password is refused too, and so is signing in from that address.
    response = quinn.post(url, {"password": PASSWORD}, format="json")
    assert response.status_code == 429 and response.json()["code"] == "throttled"
    assert written() == before
    browser = Client(REMOTE_ADDR="10.9.0.1")
    sign_in = {"username": quality_engineer.username, "password": PASSWORD}
    assert browser.post("/accounts/login/", sign_in).status_code == 429
    # Another address signs.
    elsewhere = api_as(quality_engineer)
    elsewhere.defaults["REMOTE_ADDR"] = "10.9.0.2"
    assert elsewhere.post(url, {"password": PASSWORD}, format="json").status_code == 200


def test_closing_needs_the_password(api_as, line_engineer, quality_engineer):
    ncr = walk_to(open_ncr(line_engineer), "verification", by=line_engineer)
    before = written()
    response = api_as(quality_engineer).post(f"/api/v1/ncrs/{ncr.code}/close", {}, format="json")
    assert response.status_code == 400 and "password" in response.json()["errors"]
    assert written() == before


def test_a_cell_hold_and_a_batch_hold_both_covered(api_as, proto_batch, line_engineer, batch_hold):
    cell_hold = hold_cell(
        proto_batch.cells.order_by("position").first(), by=line_engineer, reason="camera"
    )
    response = api_as(line_engineer).post(
        "/api/v1/ncrs", new_ncr(holds=[cell_hold.pk, batch_hold.pk, cell_hold.pk]), format="json"
    )
    assert response.status_code == 201
    assert sorted(h["id"] for h in response.json()["holds"]) == sorted(
        [cell_hold.pk, batch_hold.pk]
    )


def test_the_schema_documents_every_ncr_operation(client, db):
    paths = client.get("/api/schema/", {"format": "json"}).json()["paths"]
    documented = {(path, method) for path, operations in paths.items() for method in operations}
    assert {
        ("/api/v1/ncrs", "get"),
        ("/api/v1/ncrs", "post"),
        ("/api/v1/ncrs/{code}", "get"),
        ("/api/v1/ncrs/{code}/containment", "post"),
        ("/api/v1/ncrs/{code}/holds", "post"),
        ("/api/v1/ncrs/{code}/holds/{hold}", "delete"),
        ("/api/v1/ncrs/{code}/root-cause", "post"),
        ("/api/v1/ncrs/{code}/actions", "post"),
        ("/api/v1/ncrs/{code}/actions/{action}/done", "post"),
        ("/api/v1/ncrs/{code}/verify", "post"),
        ("/api/v1/ncrs/{code}/reopen", "post"),
        ("/api/v1/ncrs/{code}/close", "post"),
        ("/api/v1/ncrs/{code}/cancel", "post"),
    } <= documented
    close = paths["/api/v1/ncrs/{code}/close"]["post"]
    assert {"200", "403", "409"} <= set(close["responses"])


def test_a_correction_through_the_api(api_as, line_engineer, quality_engineer, operator):
    ncr = open_ncr(line_engineer)
    url = f"/api/v1/ncrs/{ncr.code}"
    lena = api_as(line_engineer)
    response = lena.patch(url, {"description": "Overhang 0.5 mm", "step": ""}, format="json")
    assert response.status_code == 200
    assert response.json()["description"] == "Overhang 0.5 mm" and response.json()["step"] == ""
    assert response.json()["title"] == "Cathode misaligned on the stack"
    before = written()
    assert lena.patch(url, {"line": "nowhere"}, format="json").status_code == 400
    assert lena.patch(url, {"title": ""}, format="json").status_code == 400
    assert api_as(operator).patch(url, {"title": "x"}, format="json").status_code == 403
    walk_to(ncr, "cancelled", by=line_engineer, signer=quality_engineer)
    before = written()
    response = lena.patch(url, {"title": "x"}, format="json")
    assert response.status_code == 409 and response.json()["code"] == "invalid_transition"
    assert written() == before
