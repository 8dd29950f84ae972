"""The step engine lets the apps above it react through hooks, inside its own transaction."""

from __future__ import annotations

import pytest
from django.utils import timezone

from batches import hooks
from batches.models import Cell, ProcessRun
from batches.services import StepResult, record_step
from lines.models import StationKind
from tests.factories import StationFactory, planned_batch, released_recipe

THICKNESS = {"stack_thickness_um": {"unit": "um", "target": 500.0, "min": 450.0, "max": 550.0}}


@pytest.fixture
def calls(monkeypatch) -> list[tuple]:
    """Hooks of this test only, in place of the registered ones; what they saw, in order."""
    seen: list[tuple] = []
    monkeypatch.setattr(hooks, "_after_step", [])
    monkeypatch.setattr(hooks, "_route_completed", [])

    def after_step(step):
        run = step.run
        seen.append(("after_step", run.cell.serial, ProcessRun.objects.filter(pk=run.pk).exists()))
        return lambda: seen.append(("follow_up", ProcessRun.objects.filter(pk=run.pk).exists()))

    def route_completed(cell, *, by):
        seen.append(("route_completed", Cell.objects.get(pk=cell.pk).status, by))

    hooks.on_after_step(after_step)
    hooks.on_route_completed(route_completed)
    hooks.on_after_step(after_step)  # registering twice keeps one
    return seen


def _stack(kinds: list[str]):
    batch = planned_batch(quantity=1, kinds=kinds)
    released_recipe(batch.line, StationKind.STACKING, THICKNESS)
    stacker = StationFactory(line=batch.line, kind=StationKind.STACKING)
    result = StepResult(occurred_at=timezone.now(), measurements={"stack_thickness_um": 500.0})
    return record_step(batch.cells.get(), stacker, result, by="station:test")


def test_a_step_hook_sees_the_run_before_it_is_written_and_follows_up_after(db, calls):
    run = _stack([StationKind.STACKING, StationKind.PRESSING])
    assert calls == [("after_step", run.cell.serial, False), ("follow_up", True)]


def test_the_route_hook_runs_once_the_cell_has_completed_its_route(db, calls):
    _stack([StationKind.STACKING])
    assert calls[1] == ("route_completed", Cell.Status.COMPLETED, "station:test")
    assert [c[0] for c in calls] == ["after_step", "route_completed", "follow_up"]
