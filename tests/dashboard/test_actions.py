"""Each dashboard action goes through its service for a persona allowed to do it, and is refused
with 403 and no change (no hold, no status, no event) for one who is not, and for an outsider."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.urls import reverse

from audit.models import Event
from batches.models import Batch, Cell, Hold
from batches.services import hold_batch

HOLDERS = ["line_engineer", "quality_engineer", "admin_persona"]
DISPOSERS = ["quality_engineer", "admin_persona"]


@dataclass
class Scene:
    batch: Batch
    stacked: Cell  # has done stacking, so it can be reworked
    hold: Hold


@pytest.fixture
def scene(proto_batch, stations, record, line_engineer) -> Scene:
    stacked = proto_batch.cells.order_by("position").first()
    record(stacked, stations["PR-STK-1"], material_lots={"cathode": "CAT-2611-A-01"})
    hold = hold_batch(proto_batch, by=line_engineer, reason="dew point excursion")
    return Scene(proto_batch, stacked, hold)


def snapshot() -> tuple:
    """Everything an action could change."""
    return (
        list(Hold.objects.order_by("pk").values_list("pk", "status", "disposition")),
        list(Cell.objects.order_by("pk").values_list("pk", "status", "next_step_id")),
        Event.objects.count(),
    )


def actions(scene: Scene) -> dict[str, tuple[str, dict]]:
    """name -> (url, form) of every page action, each with a valid reason."""
    cell = scene.stacked
    return {
        "hold_batch": (reverse("batch-hold", args=[scene.batch.code]), {"reason": "SE lot"}),
        "hold_cell": (reverse("cell-hold", args=[cell.serial]), {"reason": "dent"}),
        "hold_lot": (reverse("lot-hold", args=["CAT-2611-A-01"]), {"reason": "moisture"}),
        "scrap_cell": (reverse("cell-scrap", args=[cell.serial]), {"reason": "crack"}),
        "rework_cell": (
            reverse("cell-rework", args=[cell.serial]),
            {"reason": "re-stack", "step": "stacking"},
        ),
        "disposition": (
            reverse("hold-disposition", args=[scene.hold.pk]),
            {"reason": "checked", "disposition": "release", "confirm": "1"},
        ),
    }


ALLOWED = {
    "hold_batch": HOLDERS,
    "hold_cell": HOLDERS,
    "hold_lot": HOLDERS,
    "scrap_cell": DISPOSERS,
    "rework_cell": DISPOSERS,
    "disposition": DISPOSERS,
}
PERSONAS = ["operator", "line_engineer", "quality_engineer", "admin_persona", "outsider"]
CASES = [
    (action, persona, persona in allowed)
    for action, allowed in ALLOWED.items()
    for persona in PERSONAS
]


@pytest.mark.parametrize(("action", "persona", "allowed"), CASES)
def test_an_action_is_done_only_by_a_persona_allowed_to(
    scene, signed_in, request, action, persona, allowed
):
    url, form = actions(scene)[action]
    before = snapshot()
    response = signed_in(request.getfixturevalue(persona)).post(url, form)
    if allowed:
        assert response.status_code == 302
        assert snapshot() != before
    else:
        assert response.status_code == 403
        assert b"Not allowed" in response.content
        assert snapshot() == before


@pytest.mark.parametrize("action", list(ALLOWED))
def test_an_action_without_a_reason_changes_nothing(scene, signed_in, admin_persona, action):
    url, form = actions(scene)[action]
    before = snapshot()
    response = signed_in(admin_persona).post(url, {**form, "reason": "   "}, follow=True)
    assert response.status_code == 200
    assert "reason: This field is required." in response.content.decode()
    assert snapshot() == before


@pytest.mark.parametrize("action", list(ALLOWED))
def test_an_anonymous_action_goes_to_sign_in_and_changes_nothing(scene, signed_in, action):
    url, form = actions(scene)[action]
    before = snapshot()
    response = signed_in(None).post(url, form)
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    assert snapshot() == before


def test_an_action_is_a_post(scene, signed_in, admin_persona):
    for url, _form in actions(scene).values():
        assert signed_in(admin_persona).get(url).status_code == 405


def test_holding_a_batch_from_its_page_holds_every_cell_and_records_who_and_why(
    proto_batch, signed_in, line_engineer
):
    response = signed_in(line_engineer).post(
        reverse("batch-hold", args=[proto_batch.code]), {"reason": "SE lot suspect"}, follow=True
    )
    hold = Hold.objects.get(scope="batch", target=proto_batch.code)
    assert hold.opened_by == line_engineer and hold.reason == "SE lot suspect"
    assert hold.cells.count() == 10
    page = response.content.decode()
    assert "is on hold" in page and 'id="hold-banner"' in page


def test_holding_a_lot_holds_every_cell_that_consumed_it(scene, signed_in, line_engineer):
    signed_in(line_engineer).post(
        reverse("lot-hold", args=["CAT-2611-A-01"]), {"reason": "moisture"}
    )
    hold = Hold.objects.get(scope="lot", target="CAT-2611-A-01")
    assert list(hold.cells.all()) == [scene.stacked]


def test_a_disposition_from_the_queue_answers_with_the_closed_row(
    scene, signed_in, quality_engineer
):
    response = signed_in(quality_engineer).post(
        reverse("hold-disposition", args=[scene.hold.pk]),
        {"disposition": "scrap", "reason": "contaminated", "confirm": "1"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    row = response.content.decode()
    assert row.lstrip().startswith(f'<tr id="hold-{scene.hold.pk}"') and "contaminated" in row
    scene.hold.refresh_from_db()
    assert scene.hold.status == "closed" and scene.hold.disposition == "scrap"
    assert set(scene.batch.cells.values_list("status", flat=True)) == {"scrapped"}


def test_a_refused_transition_is_shown_and_changes_nothing(scene, signed_in, quality_engineer):
    client = signed_in(quality_engineer)
    url = reverse("hold-disposition", args=[scene.hold.pk])
    client.post(url, {"disposition": "release", "reason": "ok", "confirm": "1"})
    before = snapshot()
    response = client.post(url, {"disposition": "scrap", "reason": "again"}, HTTP_HX_REQUEST="1")
    assert "cannot go from closed to closed" in response.content.decode()
    assert snapshot() == before


def test_a_disposition_redirects_only_to_this_site(scene, signed_in, quality_engineer):
    response = signed_in(quality_engineer).post(
        reverse("hold-disposition", args=[scene.hold.pk]),
        {"disposition": "release", "reason": "ok", "next": "https://evil.example/", "confirm": "1"},
    )
    assert response["Location"] == reverse("holds")


def test_the_page_shows_no_action_form_to_a_persona_without_the_permission(
    scene, signed_in, operator
):
    page = signed_in(operator).get(reverse("batch", args=[scene.batch.code])).content.decode()
    assert 'id="hold-batch-form"' not in page
    assert "Holding needs the line engineer or quality engineer role." in page


def test_a_disposition_says_what_it_will_do_before_doing_it(scene, signed_in, quality_engineer):
    client = signed_in(quality_engineer)
    url = reverse("hold-disposition", args=[scene.hold.pk])
    before = snapshot()
    asked = {"disposition": "rework", "rework_at": "stacking", "reason": "re-stack"}
    row = client.post(url, asked, HTTP_HX_REQUEST="1").content.decode()
    # One of the ten cells has stacked: it goes back; nine have not reached stacking.
    assert "1 cell goes back to stacking" in row
    assert "9 have not reached stacking and go on as they are" in row
    assert 'name="confirm" value="1"' in row
    assert snapshot() == before  # asking changed nothing

    client.post(url, {**asked, "confirm": "1"}, HTTP_HX_REQUEST="1")
    scene.hold.refresh_from_db()
    assert (scene.hold.status, scene.hold.disposition) == ("closed", "rework")
    rework = Event.objects.get(verb="cell_rework", subject=scene.stacked.serial)
    assert rework.data["step"] == "stacking"
    released = Event.objects.filter(verb="cell_released", data__hold=scene.hold.pk)
    assert released.count() == 9 and not released.filter(subject=scene.stacked.serial).exists()


def test_scrap_asks_for_confirmation_from_a_page_too(scene, signed_in, quality_engineer):
    client = signed_in(quality_engineer)
    url = reverse("hold-disposition", args=[scene.hold.pk])
    page = client.post(url, {"disposition": "scrap", "reason": "recall"}).content.decode()
    assert "10 cells will be scrapped. This cannot be undone." in page
    assert Hold.objects.get(pk=scene.hold.pk).status == "open"
    assert not Cell.objects.filter(status="scrapped").exists()


def test_a_rework_of_a_hold_opened_by_hand_needs_its_step(scene, signed_in, quality_engineer):
    before = snapshot()
    row = (
        signed_in(quality_engineer)
        .post(
            reverse("hold-disposition", args=[scene.hold.pk]),
            {"disposition": "rework", "reason": "re-do", "confirm": "1"},
            HTTP_HX_REQUEST="1",
        )
        .content.decode()
    )
    assert "Choose the step the cells go back to." in row
    assert snapshot() == before
