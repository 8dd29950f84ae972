"""A failed result holds its cell: a limit, a missing parameter, a defect, the equipment's own fail."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from batches.hooks import StepApplied
from batches.models import Hold, HoldRule, ProcessRun
from batches.services import hold_cell
from quality.rules.registry import rule


@rule(
    "out_of_spec",
    label=_("Out-of-spec result holds the cell"),
    holds=Hold.Scope.CELL,
    applies=lambda step: step.run.verdict == ProcessRun.Verdict.FAIL,
)
def out_of_spec(version: HoldRule, step: StepApplied) -> None:
    run = step.run
    problems = [v["parameter"] for v in run.violations] + list(run.defects)
    if run.equipment_verdict == ProcessRun.Verdict.FAIL:
        problems.append("equipment verdict fail")
    hold_cell(
        run.cell,
        by=version.label,
        rule=version,
        run=run,
        reason=f"{run.step.station_kind} failed: {', '.join(problems)}",
    )
