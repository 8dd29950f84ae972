"""A cell made with equipment that could not be used then is held: a registered item (press
vessel, fixture, channel) out of calibration, locked out or retired at the result's time."""

from __future__ import annotations

from batches.hooks import StepApplied
from batches.models import Hold, HoldRule
from batches.services import open_hold
from quality.rules.registry import rule


def _unusable(step: StepApplied) -> str:
    # The step engine read the item with its status changes and calibrations (lines.equipment
    # .registry): no query here.
    item = step.run.equipment
    return item.unusable_reason(step.run.finished_at) if item is not None else ""


@rule(
    "equipment_unusable",
    label="Equipment out of calibration, locked out or retired holds the cell",
    holds=Hold.Scope.CELL,
    applies=lambda step: bool(_unusable(step)),
)
def equipment_unusable(version: HoldRule, step: StepApplied) -> None:
    cell = step.run.cell
    open_hold(
        scope=Hold.Scope.CELL,
        target=cell.serial,
        cells=[cell],
        by=version.label,
        rule=version,
        batch=cell.batch,
        run=step.run,
        reason=f"{step.run.step.station_kind} used equipment it could not: {_unusable(step)}",
    )
