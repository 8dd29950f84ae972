"""Cells of a batch failing insulation (hipot) at stacking hold the batch, from `failures` cells."""

from __future__ import annotations

from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from batches.hooks import StepApplied
from batches.models import Cell, Hold, HoldRule
from batches.services import hold_batch
from lines.models import StationKind
from quality.rules.registry import RULES, Threshold, open_hold_for, rule

CODE = "batch_insulation_failures"
INSULATION = "insulation_resistance_mohm"


def _is_insulation_failure(step: StepApplied) -> bool:
    run = step.run
    return "insulation_fail" in run.defects or any(
        v["parameter"] == INSULATION and v["problem"] == "out_of_spec" for v in run.violations
    )


@rule(
    CODE,
    label=_("Insulation failures hold the batch"),
    holds=Hold.Scope.BATCH,
    applies=_is_insulation_failure,
    thresholds={"failures": Threshold(int, 2)},
)
def batch_insulation_failures(version: HoldRule, step: StepApplied) -> None:
    batch = step.run.cell.batch
    if open_hold_for(version, Hold.Scope.BATCH, batch.code):
        return
    failed_cells = (
        Cell.objects.filter(batch=batch, runs__station__kind=StationKind.STACKING)
        .filter(
            Q(runs__defects__contains=["insulation_fail"])
            | Q(runs__measurements__name=INSULATION, runs__measurements__in_spec=False)
        )
        .distinct()
        .count()
    )
    if failed_cells >= RULES[CODE].threshold(version, "failures"):
        hold_batch(
            batch,
            by=version.label,
            rule=version,
            found_at=step.run.step.station_kind,
            reason=f"{failed_cells} cells failed insulation (hipot) in batch {batch.code}",
        )
