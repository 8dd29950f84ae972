"""A hard short in formation holds the batch: its press cycle and SE lot are the suspects."""

from __future__ import annotations

from batches.models import Hold, HoldRule, ProcessRun
from batches.services import hold_batch
from lines.models import StationKind
from quality.rules.registry import open_hold_for, rule


@rule(
    "formation_hard_short",
    label="Hard short in formation holds the batch",
    holds=Hold.Scope.BATCH,
    applies=lambda run: run.station.kind == StationKind.FORMATION and "short" in run.defects,
)
def formation_hard_short(version: HoldRule, run: ProcessRun) -> None:
    batch = run.cell.batch
    if open_hold_for(version, Hold.Scope.BATCH, batch.code):
        return
    hold_batch(
        batch,
        by=version.label,
        rule=version,
        reason=f"Hard short in formation on {run.cell.serial}; trace to press cycle and SE lot",
    )
