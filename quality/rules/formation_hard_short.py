"""A hard short in formation holds the batch: its press cycle and SE lot are the suspects."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from batches.hooks import StepApplied
from batches.models import Hold, HoldRule
from batches.services import hold_batch
from lines.models import StationKind
from quality.rules.registry import open_hold_for, rule


@rule(
    "formation_hard_short",
    label=_("Hard short in formation holds the batch"),
    holds=Hold.Scope.BATCH,
    applies=lambda step: (
        step.run.station.kind == StationKind.FORMATION and "short" in step.run.defects
    ),
)
def formation_hard_short(version: HoldRule, step: StepApplied) -> None:
    run = step.run
    batch = run.cell.batch
    if open_hold_for(version, Hold.Scope.BATCH, batch.code):
        return
    hold_batch(
        batch,
        by=version.label,
        rule=version,
        found_at=step.run.step.station_kind,
        reason=f"Hard short in formation on {run.cell.serial}; trace to press cycle and SE lot",
    )
