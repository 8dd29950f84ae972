"""A short after pressing holds every cell of that press cycle (one load of the press vessel)."""

from __future__ import annotations

from batches.models import Hold, HoldRule, ProcessRun
from batches.services import hold_press_cycle
from lines.models import StationKind
from quality.rules.registry import open_hold_for, rule


def _short_in_press_cycle(run: ProcessRun) -> bool:
    return (
        run.station.kind == StationKind.PRESSING
        and "short" in run.defects
        and bool(run.equipment_ref)
    )


@rule(
    "press_cycle_short",
    label="Short after pressing holds the press cycle",
    holds=Hold.Scope.PRESS_CYCLE,
    applies=_short_in_press_cycle,
)
def press_cycle_short(version: HoldRule, run: ProcessRun) -> None:
    target = f"{run.station.code}:{run.equipment_ref}"
    open_hold = open_hold_for(version, Hold.Scope.PRESS_CYCLE, target)
    if open_hold is not None:
        open_hold.cells.add(run.cell)  # a cell of the same cycle reported later joins the hold
        return
    hold_press_cycle(
        run.station,
        run.equipment_ref,
        by=version.label,
        rule=version,
        reason=f"Short after pressing on {run.cell.serial} in press cycle {run.equipment_ref}",
    )
