"""A cell that consumed a lot it may not use is held: a lot in quarantine, rejected, used up or
past its expiry (a lot on hold holds the cell through the lot's own hold)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from batches.hooks import StepApplied
from batches.models import Hold, HoldRule
from batches.services import open_hold
from quality.rules.registry import rule


@rule(
    "unusable_lot",
    label=_("A lot that may not be used holds the cell that consumed it"),
    holds=Hold.Scope.CELL,
    applies=lambda step: any(
        lot.unusable_reason(step.run.finished_at) for lot in step.lots.values()
    ),
)
def unusable_lot(version: HoldRule, step: StepApplied) -> None:
    at = step.run.finished_at
    unusable = {lot: why for lot in step.lots.values() if (why := lot.unusable_reason(at))}
    cell = step.run.cell
    open_hold(
        scope=Hold.Scope.CELL,
        target=cell.serial,
        cells=[cell],
        by=version.label,
        rule=version,
        batch=cell.batch,
        lot=next(iter(unusable)),  # the lot's page lists the hold too
        run=step.run,
        reason=f"{step.run.step.station_kind} consumed what it may not: "
        f"{'; '.join(unusable.values())}",
    )
