"""The database itself refuses rows that break the domain's integrity rules."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError
from django.utils import timezone

from audit.models import Event
from batches.models import Batch, Cell, Consumption, Hold, MaterialLot, MaterialRole
from batches.services import StepResult, record_step
from lines.models import CellDesign, StationKind
from tests.factories import (
    CellDesignFactory,
    MaterialLotFactory,
    StationFactory,
    planned_batch,
    released_recipe,
)


@pytest.fixture
def batch(db) -> Batch:
    return planned_batch(quantity=2)


def _refused(match: str, action) -> None:
    with pytest.raises(IntegrityError, match=match), transaction.atomic():
        action()


def test_cell_serials_and_batch_codes_are_unique(batch):
    cell = batch.cells.first()
    _refused(
        "serial",
        lambda: Cell.objects.create(
            serial=cell.serial, batch=batch, position=99, next_step=cell.next_step
        ),
    )
    _refused(
        "code",
        lambda: Batch.objects.create(
            code=batch.code,
            line=batch.line,
            design=batch.design,
            route=batch.route,
            planned_quantity=1,
        ),
    )


def test_a_cell_on_its_route_must_know_its_next_step(batch):
    cell = batch.cells.first()
    _refused(
        "next_step_matches_status", lambda: Cell.objects.filter(pk=cell.pk).update(next_step=None)
    )
    _refused(
        "next_step_matches_status",
        lambda: Cell.objects.filter(pk=cell.pk).update(status="completed"),
    )


def test_batch_quantities_are_bounded(batch):
    _refused(
        "quantity_in_range",
        lambda: Batch.objects.filter(pk=batch.pk).update(planned_quantity=0),
    )


@pytest.mark.parametrize(
    ("change", "constraint"),
    [
        ({"nominal_capacity_ah": 0}, "figures_positive"),
        ({"thickness_mm": -1}, "figures_positive"),
        ({"voltage_min_v": 4.3}, "voltage_window_ordered"),
    ],
)
def test_cell_design_figures_are_checked(db, change, constraint):
    design = CellDesignFactory()
    _refused(constraint, lambda: CellDesign.objects.filter(pk=design.pk).update(**change))


def test_lot_quantities_and_costs_cannot_be_negative(db):
    lot = MaterialLotFactory()
    _refused(
        "quantity_and_cost", lambda: MaterialLot.objects.filter(pk=lot.pk).update(unit_cost=-1)
    )
    _refused("quantity_and_cost", lambda: MaterialLot.objects.filter(pk=lot.pk).update(quantity=-5))


def test_consumed_quantities_are_positive(batch):
    lot = MaterialLotFactory(role=MaterialRole.ELECTROLYTE)
    cell = batch.cells.first()
    _refused(
        "quantity_positive",
        lambda: Consumption.objects.create(
            cell=cell, lot=lot, role="electrolyte", quantity=Decimal(0)
        ),
    )


def test_holds_need_a_reason_an_opener_and_a_disposition_when_closed(batch, line_engineer):
    base = {"scope": "batch", "target": batch.code, "batch": batch}
    _refused(
        "reason_required", lambda: Hold.objects.create(**base, reason="", opened_by=line_engineer)
    )
    _refused("opened_by_person_or_rule", lambda: Hold.objects.create(**base, reason="x"))
    hold = Hold.objects.create(**base, reason="x", opened_by=line_engineer)
    _refused(
        "closed_has_disposition",
        lambda: Hold.objects.filter(pk=hold.pk).update(status="closed", closed_at=timezone.now()),
    )


def test_history_is_protected_from_deletion(batch):
    cell = batch.cells.first()
    stacker = StationFactory(line=batch.line, kind=StationKind.STACKING)
    limits = {"unit": "um", "target": 500.0, "min": 450.0, "max": 550.0}
    recipe = released_recipe(batch.line, StationKind.STACKING, {"stack_thickness_um": limits})
    lot = batch.planned_materials.get(role=MaterialRole.ELECTROLYTE).lot
    result = StepResult(
        occurred_at=timezone.now(),
        measurements={"stack_thickness_um": 501.0},
        material_lots={MaterialRole.ELECTROLYTE: lot.code},
    )
    run = record_step(cell, stacker, result, by="station:test")
    assert run.recipe_version.recipe == recipe and run.consumptions.get().lot == lot
    for doomed in (cell, stacker, recipe, lot):
        with pytest.raises((ProtectedError, IntegrityError)), transaction.atomic():
            doomed.delete()
    assert Cell.objects.filter(pk=cell.pk).exists()


def test_the_audit_trail_is_append_only(batch):
    event = Event.objects.filter(subject=batch.code).first()
    _refused("append-only", lambda: Event.objects.filter(pk=event.pk).update(reason="edited"))
    _refused("append-only", lambda: Event.objects.filter(pk=event.pk).delete())
    assert Event.objects.filter(pk=event.pk, reason="").exists()
