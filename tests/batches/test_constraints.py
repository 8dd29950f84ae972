"""The database itself refuses rows that break the domain's integrity rules."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError
from django.utils import timezone

from audit.models import Event
from batches.models import Batch, Cell, CellDesign, Consumption, Hold, MaterialLot


def _refused(match: str, action) -> None:
    with pytest.raises(IntegrityError, match=match), transaction.atomic():
        action()


def test_cell_serials_and_batch_codes_are_unique(proto_batch):
    cell = proto_batch.cells.first()
    _refused(
        "serial",
        lambda: Cell.objects.create(
            serial=cell.serial, batch=proto_batch, position=99, next_step=cell.next_step
        ),
    )
    _refused(
        "code",
        lambda: Batch.objects.create(
            code=proto_batch.code,
            line=proto_batch.line,
            design=proto_batch.design,
            route=proto_batch.route,
            planned_quantity=1,
        ),
    )


def test_a_cell_on_its_route_must_know_its_next_step(proto_batch):
    cell = proto_batch.cells.first()
    _refused(
        "next_step_matches_status", lambda: Cell.objects.filter(pk=cell.pk).update(next_step=None)
    )
    _refused(
        "next_step_matches_status",
        lambda: Cell.objects.filter(pk=cell.pk).update(status="completed"),
    )


def test_batch_quantities_are_bounded(proto_batch):
    _refused(
        "quantity_in_range",
        lambda: Batch.objects.filter(pk=proto_batch.pk).update(planned_quantity=0),
    )


@pytest.mark.parametrize(
    ("change", "constraint"),
    [
        ({"nominal_capacity_ah": 0}, "figures_positive"),
        ({"thickness_mm": -1}, "figures_positive"),
        ({"voltage_min_v": 4.3}, "voltage_window_ordered"),
    ],
)
def test_cell_design_figures_are_checked(plant, change, constraint):
    _refused(constraint, lambda: CellDesign.objects.filter(code="SSB-5AH-P1").update(**change))


def test_lot_quantities_and_costs_cannot_be_negative(plant):
    _refused(
        "quantity_and_cost",
        lambda: MaterialLot.objects.filter(code="SE-2611-01").update(unit_cost=-1),
    )
    _refused(
        "quantity_and_cost",
        lambda: MaterialLot.objects.filter(code="SE-2611-01").update(quantity=-5),
    )


def test_consumed_quantities_are_positive(proto_batch):
    lot = MaterialLot.objects.get(code="SE-2611-01")
    cell = proto_batch.cells.first()
    _refused(
        "quantity_positive",
        lambda: Consumption.objects.create(
            cell=cell, lot=lot, role="electrolyte", quantity=Decimal(0)
        ),
    )


def test_holds_need_a_reason_an_opener_and_a_disposition_when_closed(proto_batch, line_engineer):
    base = {"scope": "batch", "target": proto_batch.code, "batch": proto_batch}
    _refused(
        "reason_required", lambda: Hold.objects.create(**base, reason="", opened_by=line_engineer)
    )
    _refused("opened_by_person_or_rule", lambda: Hold.objects.create(**base, reason="x"))
    hold = Hold.objects.create(**base, reason="x", opened_by=line_engineer)
    _refused(
        "closed_has_disposition",
        lambda: Hold.objects.filter(pk=hold.pk).update(status="closed", closed_at=timezone.now()),
    )


def test_history_is_protected_from_deletion(proto_batch, stations, record):
    cell = proto_batch.cells.first()
    run = record(cell, stations["PR-STK-1"], material_lots={"electrolyte": "SE-2611-01"})
    for doomed in (
        cell,
        stations["PR-STK-1"],
        run.recipe_version.recipe,
        MaterialLot.objects.get(code="SE-2611-01"),
    ):
        with pytest.raises((ProtectedError, IntegrityError)), transaction.atomic():
            doomed.delete()
    assert Cell.objects.filter(pk=cell.pk).exists()


def test_the_audit_trail_is_append_only(proto_batch):
    event = Event.objects.filter(subject=proto_batch.code).first()
    _refused("append-only", lambda: Event.objects.filter(pk=event.pk).update(reason="edited"))
    _refused("append-only", lambda: Event.objects.filter(pk=event.pk).delete())
    assert Event.objects.filter(pk=event.pk, reason="").exists()
