"""A short after pressing holds every cell of that press cycle (one load of the press vessel)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from batches.hooks import StepApplied
from batches.models import Hold, HoldRule
from batches.services import hold_press_cycle, press_cycle_code
from lines.models import StationKind
from quality.rules.registry import open_hold_for, rule


def _short_in_press_cycle(step: StepApplied) -> bool:
    run = step.run
    return (
        run.station.kind == StationKind.PRESSING
        and "short" in run.defects
        and bool(run.equipment_ref)
    )


@rule(
    "press_cycle_short",
    label=_("Short after pressing holds the press cycle"),
    holds=Hold.Scope.PRESS_CYCLE,
    applies=_short_in_press_cycle,
)
def press_cycle_short(version: HoldRule, step: StepApplied) -> None:
    run = step.run
    # A cycle already held holds this cell too: the step engine joined it to that hold.
    if open_hold_for(
        version, Hold.Scope.PRESS_CYCLE, press_cycle_code(run.station, run.equipment_ref)
    ):
        return
    hold_press_cycle(
        run.station,
        run.equipment_ref,
        by=version.label,
        rule=version,
        reason=f"Short after pressing on {run.cell.serial} in press cycle {run.equipment_ref}",
    )
