from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from audit.models import Event
from batches.models import Hold
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
        "lines/stationtoken",
        "lines/stationstatechange",
        "batches/celldesign",
        "batches/materiallot",
        "batches/batch",
        "batches/hold",
        "batches/holdrule",
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
