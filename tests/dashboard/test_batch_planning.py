"""A line engineer plans a batch in the browser, then starts or cancels it; an operator cannot."""

from __future__ import annotations

from django.urls import reverse

from audit.models import Event
from batches.models import Batch, Cell, Consumption, MaterialLot
from lines.models import Route


def _form(**overrides) -> dict:
    route = Route.objects.get(line__code="proto", code="std")
    return {
        "line": "proto",
        "design": "SSB-5AH-P1",
        "route": str(route.pk),
        "quantity": "12",
        "lot_cathode": "CAT-2611-A-01",
        **overrides,
    }


def test_a_line_engineer_plans_a_batch_with_its_lots(plant, signed_in, line_engineer):
    client = signed_in(line_engineer)
    page = client.get(reverse("batch-new")).content.decode()
    assert 'name="lot_cathode"' in page and "left" in page
    response = client.post(reverse("batch-new"), _form())
    batch = Batch.objects.get()
    assert response["Location"] == reverse("batch", args=[batch.code])
    assert (batch.status, batch.planned_quantity, batch.created_by) == (
        "planned",
        12,
        line_engineer,
    )
    assert batch.cells.count() == 12
    assert {m.role: m.lot.code for m in batch.planned_materials.all()} == {
        "cathode": "CAT-2611-A-01"
    }
    page = client.get(reverse("batch", args=[batch.code])).content.decode()
    assert "Planned: what happens next" in page and "CAT-2611-A-01" in page
    assert 'id="economics"' not in page  # nothing made yet: no $0.00 of material to show


def test_a_lot_shows_what_is_left_of_it(proto_batch, stations, record, signed_in, line_engineer):
    lot = MaterialLot.objects.get(code="CAT-2611-A-01")
    record(proto_batch.cells.first(), stations["PR-STK-1"], material_lots={"cathode": lot.code})
    used = sum(c.quantity for c in Consumption.objects.filter(lot=lot))
    assert used > 0
    left = (lot.quantity - used).normalize()
    page = signed_in(line_engineer).get(reverse("batch-new")).content.decode()
    assert f"{lot.code} · {lot.material} · {left:f} {lot.unit} left" in page


def test_a_route_of_another_line_is_refused_and_nothing_is_planned(plant, signed_in, line_engineer):
    other = Route.objects.exclude(line__code="proto").first()
    page = signed_in(line_engineer).post(reverse("batch-new"), _form(route=str(other.pk)))
    assert page.status_code == 200
    assert "is not a route of line proto" in page.content.decode()
    assert not Batch.objects.exists()


def test_start_and_cancel_from_the_batch_page(plant, signed_in, line_engineer):
    client = signed_in(line_engineer)
    client.post(reverse("batch-new"), _form(quantity="3"))
    first, second = Batch.objects.get(), None
    client.post(reverse("batch-start", args=[first.code]))
    assert Batch.objects.get(pk=first.pk).status == "in_progress"

    client.post(reverse("batch-new"), _form(quantity="2"))
    second = Batch.objects.exclude(pk=first.pk).get()
    client.post(reverse("batch-cancel", args=[second.code]), {"reason": "cathode recalled"})
    assert Batch.objects.get(pk=second.pk).status == "cancelled"
    assert set(Cell.objects.filter(batch=second).values_list("status", flat=True)) == {"scrapped"}
    assert Event.objects.filter(subject=second.code, reason="cathode recalled").exists()


def test_an_operator_may_not_plan_start_or_cancel(proto_batch, signed_in, operator):
    client = signed_in(operator)
    assert client.get(reverse("batch-new")).status_code == 403
    assert client.post(reverse("batch-new"), _form()).status_code == 403
    assert client.post(reverse("batch-start", args=[proto_batch.code])).status_code == 403
    cancel = reverse("batch-cancel", args=[proto_batch.code])
    assert client.post(cancel, {"reason": "x"}).status_code == 403
    assert Batch.objects.get(pk=proto_batch.pk).status == "planned"
    assert Batch.objects.count() == 1


def test_the_traveller_lists_the_route_with_stations_recipes_and_lots(
    plant, signed_in, line_engineer, operator
):
    from lines.models import RecipeVersion

    signed_in(line_engineer).post(reverse("batch-new"), _form(quantity="3"))
    batch = Batch.objects.get()
    page = signed_in(operator).get(reverse("batch-traveller", args=[batch.code]))
    assert page.status_code == 200
    text = page.content.decode()
    assert f"<title>{batch.code}</title>" in text  # the QR code carries the batch code
    assert f"{batch.code}-0001" in text and f"{batch.code}-0003" in text
    assert "CAT-2611-A-01" in text
    for step in batch.route.steps.all():
        stations = batch.line.stations.filter(kind=step.station_kind)
        assert all(s.code in text for s in stations)
        released = RecipeVersion.objects.filter(
            recipe__line=batch.line, recipe__station_kind=step.station_kind, status="released"
        ).first()
        if released is not None:
            assert f"{released.recipe.name} v{released.version}" in text
    assert text.count('class="sign"') == 3 * batch.route.steps.count()
