from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from audit.models import Event
from batches.models import Hold, HoldRule
from lines.models import RecipeVersion


@pytest.fixture
def admin_client_for(client, db):
    admin_user = User.objects.create_superuser(
        "ada-admin", "ada@example.com", "a-long-test-password"
    )
    client.force_login(admin_user)
    return client


@pytest.mark.parametrize(
    "model",
    [
        "lines/line",
        "lines/station",
        "lines/equipment",
        "lines/route",
        "lines/recipe",
        "lines/recipeversion",
        "stations/stationtoken",
        "lines/stationstatechange",
        "lines/celldesign",
        "batches/materiallot",
        "batches/batch",
        "batches/hold",
        "batches/holdrule",
        "lines/zone",
        "lines/excursion",
        "lines/shiftcalendar",
        "lines/downtimereason",
        "lines/dayoff",
        "lines/stopreasoncorrection",
        "lines/idealcycletime",
        "lines/equipmentstatuschange",
        "lines/equipmentcalibration",
    ],
)
def test_master_data_lists_render_with_their_filters(admin_client_for, proto_batch, model):
    response = admin_client_for.get(f"/admin/{model}/")
    assert response.status_code == 200


def test_holding_a_batch_from_the_admin_goes_through_the_service(admin_client_for, proto_batch):
    response = admin_client_for.post(
        reverse("admin:batches_batch_changelist"),
        {"action": "hold_batches", "_selected_action": [proto_batch.pk]},
    )
    assert response.status_code == 302
    hold = Hold.objects.get(scope="batch", target=proto_batch.code)
    assert hold.cells.count() == 10
    assert Event.objects.filter(
        verb="hold_opened", subject=proto_batch.code, actor="ada-admin"
    ).exists()


def test_a_released_recipe_version_is_read_only_in_the_admin(admin_client_for, plant):
    version = RecipeVersion.objects.filter(status="released").first()
    url = reverse("admin:lines_recipeversion_change", args=[version.pk])
    response = admin_client_for.post(url, {"note": "rewritten"})
    assert response.status_code == 403
    version.refresh_from_db()
    assert version.note != "rewritten"


def test_adding_a_hold_rule_in_the_admin_supersedes_the_version_in_force(admin_client_for, plant):
    url = reverse("admin:batches_holdrule_add")
    form = {"code": "batch_insulation_failures", "parameters": '{"failures": 3}', "note": "new"}
    response = admin_client_for.post(url, form)
    assert response.status_code == 302
    versions = dict(
        HoldRule.objects.filter(code="batch_insulation_failures").values_list("version", "in_force")
    )
    assert versions == {1: False, 2: True}
    assert HoldRule.objects.get(code="batch_insulation_failures", in_force=True).parameters == {
        "failures": 3
    }


@pytest.mark.parametrize(
    "form",
    [
        {"code": "batch_insulation_failures", "parameters": '{"failures": 0}', "note": "new"},
        {"code": "batch_insulation_failures", "parameters": '{"failures": 3}', "note": ""},
        {"code": "batch_insulation_failures", "parameters": "[3]", "note": "new"},
    ],
)
def test_the_admin_refuses_bad_thresholds_or_no_reason_on_the_form(admin_client_for, plant, form):
    response = admin_client_for.post(reverse("admin:batches_holdrule_add"), form)
    assert response.status_code == 200 and "errornote" in response.content.decode()
    assert not HoldRule.objects.filter(version=2).exists()


def test_a_hold_rule_version_cannot_be_deleted_in_the_admin(admin_client_for, plant):
    rule = HoldRule.objects.get(code="out_of_spec")
    response = admin_client_for.post(
        reverse("admin:batches_holdrule_delete", args=[rule.pk]), {"post": "yes"}
    )
    assert response.status_code == 403
    assert HoldRule.objects.filter(pk=rule.pk).exists()


def test_editing_master_data_in_the_admin_leaves_an_event_with_what_changed(
    admin_client_for, plant
):
    from lines.models import Line

    line = Line.objects.get(code="proto")
    form = {
        "code": "proto",
        "name": "Prototype line (NRC building 3)",
        "site": line.site,
        "site_street": line.site_street,
        "site_postal_code": line.site_postal_code,
        "site_country": line.site_country,
        "process_cost_per_cell": "2.50",
        "currency": line.currency,
        "stations-TOTAL_FORMS": "0",
        "stations-INITIAL_FORMS": "0",
    }
    response = admin_client_for.post(f"/admin/lines/line/{line.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    event = Event.objects.get(verb="master_data_changed", subject="proto")
    assert event.subject_type == "line" and event.actor == "ada-admin"
    assert event.data["fields"]["name"] == {
        "from": line.name,
        "to": "Prototype line (NRC building 3)",
    }
    assert set(event.data["fields"]) == {"name", "process_cost_per_cell"}


def test_a_lots_status_changes_in_the_admin_only_through_its_service(admin_client_for, plant):
    from batches.models import MaterialLot

    lot = MaterialLot.objects.get(code="SE-2611-02")
    response = admin_client_for.post(
        "/admin/batches/materiallot/",
        {"action": "set_quarantine", "_selected_action": [lot.pk]},
    )
    assert response.status_code == 302
    assert MaterialLot.objects.get(pk=lot.pk).status == "quarantine"
    assert Event.objects.filter(verb="lot_status_changed", subject=lot.code).count() == 1
    page = admin_client_for.get(f"/admin/batches/materiallot/{lot.pk}/change/").content.decode()
    assert 'name="status"' not in page  # read-only on the form


def test_a_line_gets_a_calendar_of_its_own_from_the_admin(admin_client_for, plant):
    from lines.models import Line, ShiftCalendar

    line = Line.objects.get(code="proto")
    response = admin_client_for.post(
        reverse("admin:lines_line_changelist"),
        {"action": "write_calendars", "_selected_action": [line.pk]},
    )
    assert response.status_code == 302
    calendar = ShiftCalendar.objects.get(line=line)
    assert sorted(calendar.shifts.values_list("weekday", flat=True)) == [0, 1, 2, 3, 4]
    assert Event.objects.filter(verb="shift_calendar_written", subject="proto").exists()
