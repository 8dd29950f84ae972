"""An SPC signal on a parameter marked to hold (quality.spc settings) holds the cell.

After a step, each held parameter's new value is judged with the parameter's chosen Nelson rules
on its I-MR chart: the latest `window` points of that parameter at that step of the line, up to
and including the new one, against the baseline in force (phase II) or, without one, limits from
those points themselves (judged only from `min_points` points on: fewer give no sigma worth the
name). A signal the new point completes holds its cell; parameters marked only to flag show
their signals on the chart and the capability summary and hold nothing.

`applies` reads which parameters hold once per chunk of station results (StepContext.read_once,
one query, like the hold rules in force), so a step at a step where nothing is marked to hold
costs no query at all.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from batches.hooks import StepApplied
from batches.models import Hold, HoldRule, Measurement
from batches.services import hold_cell
from quality.rules.registry import RULES, Threshold, open_hold_for, rule
from quality.spc import statistics
from quality.spc.selectors import (
    SPC_SIGNAL,
    baseline_in_force,
    held_parameters,
    rules_of,
    setting_in_force,
    signal_reason_prefix,
)

CODE = SPC_SIGNAL


def _held_here(step: StepApplied) -> frozenset[str]:
    held = step.context.read_once("spc_held_parameters", held_parameters)
    run = step.run
    return held.get((run.station.line_id, run.step.station_kind), frozenset())


@rule(
    CODE,
    label=_("SPC signal on a parameter marked to hold holds the cell"),
    holds=Hold.Scope.CELL,
    applies=lambda step: bool(_held_here(step)),
    thresholds={"window": Threshold(int, 50), "min_points": Threshold(int, 20)},
)
def spc_signal(version: HoldRule, step: StepApplied) -> None:
    run = step.run
    cell = run.cell
    if open_hold_for(version, Hold.Scope.CELL, cell.serial):
        return
    names = _held_here(step)
    new_values = dict(
        Measurement.objects.filter(run=run, name__in=names).values_list("name", "value")
    )
    declared = RULES[CODE]
    window = declared.threshold(version, "window")
    min_points = declared.threshold(version, "min_points")
    line, kind = run.station.line, run.step.station_kind
    fired: list[str] = []
    for name in sorted(new_values):
        rules = rules_of(setting_in_force(line, kind, name))
        baseline = baseline_in_force(line, kind, name, statistics.IMR)
        recent = list(
            Measurement.objects.filter(
                name=name,
                run__station__line=line,
                run__step__station_kind=kind,
                run__finished_at__lte=run.finished_at,
            )
            .exclude(run__finished_at=run.finished_at, run_id__gt=run.pk)
            .order_by("-run__finished_at", "-run_id")
            .values_list("value", flat=True)[:window]
        )
        recent.reverse()
        if baseline is None and len(recent) < min_points:
            continue
        chart = statistics.imr_chart(
            recent,
            rules=rules,
            baseline=statistics.Baseline(baseline.center, baseline.sigma_within)
            if baseline
            else None,
        )
        if signals := chart.signals[-1]:
            numbers = ", ".join(str(n) for n in signals)
            plural = "s" if len(signals) > 1 else ""
            limits = f"baseline v{baseline.version}" if baseline else f"last {len(recent)} points"
            fired.append(
                f"{signal_reason_prefix(name)} Nelson rule{plural} {numbers} "
                f"({new_values[name]:g} against {limits})"
            )
    if fired:
        hold_cell(cell, by=version.label, rule=version, run=run, reason="; ".join(fired))
