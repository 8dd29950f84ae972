"""The hold rules of DOMAIN.md. Each rule's thresholds live in a versioned HoldRule row; the code
here is the logic its code names. A rule fires at most once per open target (a DB constraint).

Each rule has two parts: `applies`, a cheap test of the run alone (in memory, no query) that says
whether the run can fire the rule at all, and the check itself. Most runs fire nothing, so
record_steps follows up only the runs some rule applies to. A rule also names the thresholds it
reads (`parameters`); new ones take effect as a new version (supersede_hold_rule).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from audit.services import record_event
from batches.models import Cell, Hold, HoldRule, Measurement, ProcessRun
from batches.services import hold_batch, hold_cell, hold_press_cycle, require_reason
from mes.errors import DomainError

RuleCheck = Callable[[HoldRule, ProcessRun], None]


@dataclass(frozen=True)
class Rule:
    applies: Callable[[ProcessRun], bool]
    check: RuleCheck
    # The thresholds the check reads from its version's parameters: name -> int or float.
    parameters: Mapping[str, type] = field(default_factory=dict)


_RULES: dict[str, Rule] = {}


def rule(
    code: str,
    *,
    applies: Callable[[ProcessRun], bool],
    parameters: Mapping[str, type] | None = None,
) -> Callable[[RuleCheck], RuleCheck]:
    def register(check: RuleCheck) -> RuleCheck:
        _RULES[code] = Rule(applies=applies, check=check, parameters=dict(parameters or {}))
        return check

    return register


def rule_thresholds(code: str) -> Mapping[str, type]:
    """The thresholds rule `code` reads (name -> int or float); none for a rule that has none."""
    return _RULES[code].parameters


def rule_parameters(code: str, parameters: Mapping[str, Any]) -> dict[str, int | float]:
    """The thresholds of a new version of rule `code`, checked: names the rule reads, positive
    numbers, whole where the rule counts."""
    if code not in _RULES:
        raise DomainError("unknown_rule", f"No hold rule {code}.")
    expected, errors = _RULES[code].parameters, {}
    for name, value in parameters.items():
        kind = expected.get(name)
        if kind is None:
            errors[name] = (
                f"{code} reads no such threshold (it reads: {', '.join(expected) or 'none'})."
            )
        elif isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            errors[name] = "A positive number."
        elif kind is int and value != int(value):
            errors[name] = "A whole number."
    if errors:
        raise DomainError("invalid", "Invalid thresholds.", errors=errors)
    return {name: expected[name](value) for name, value in parameters.items()}


@transaction.atomic
def supersede_hold_rule(
    code: str, *, parameters: Mapping[str, Any], by: Any, note: str
) -> HoldRule:
    """Put new thresholds of a rule in force as its next version. The version in force is
    retired, never changed: the holds it opened keep naming the thresholds they were opened by.
    Thresholds left out take the rule's defaults."""
    require_reason(note)
    thresholds = rule_parameters(code, parameters)
    versions = list(HoldRule.objects.select_for_update().filter(code=code))
    retired = [v.version for v in versions if v.active]
    HoldRule.objects.filter(code=code, active=True).update(active=False)
    new = HoldRule.objects.create(
        code=code,
        version=max((v.version for v in versions), default=0) + 1,
        parameters=thresholds,
        note=note,
        active=True,
    )
    record_event(
        actor=by,
        verb="hold_rule_superseded",
        subject_type="hold_rule",
        subject=code,
        reason=note,
        data={"version": new.version, "parameters": thresholds, "retired": retired},
    )
    return new


def rules_for(run: ProcessRun, active: Iterable[HoldRule]) -> list[HoldRule]:
    """The active rules that `run` can fire."""
    return [a for a in active if _RULES[a.code].applies(run)]


def apply_hold_rules(run: ProcessRun, active: Iterable[HoldRule] | None = None) -> None:
    """Run the active rules (all of them unless given) against a run just recorded, inside the
    recording transaction."""
    if active is None:
        active = HoldRule.objects.filter(active=True).order_by("code")
    for hold_rule in rules_for(run, active):
        _RULES[hold_rule.code].check(hold_rule, run)


def _open_for(active: HoldRule, scope: str, target: str) -> bool:
    return Hold.objects.filter(
        rule__code=active.code, scope=scope, target=target, status="open"
    ).exists()


@rule(HoldRule.Code.OUT_OF_SPEC, applies=lambda run: run.verdict == ProcessRun.Verdict.FAIL)
def out_of_spec(active: HoldRule, run: ProcessRun) -> None:
    problems = [v["parameter"] for v in run.violations] + list(run.defects)
    if run.equipment_verdict == ProcessRun.Verdict.FAIL:
        problems.append("equipment verdict fail")
    hold_cell(
        run.cell,
        by=active.label,
        rule=active,
        run=run,
        reason=f"{run.step.station_kind} failed: {', '.join(problems)}",
    )


def _short_in_press_cycle(run: ProcessRun) -> bool:
    return run.station.kind == "pressing" and "short" in run.defects and bool(run.equipment_ref)


@rule(HoldRule.Code.PRESS_CYCLE_SHORT, applies=_short_in_press_cycle)
def press_cycle_short(active: HoldRule, run: ProcessRun) -> None:
    target = f"{run.station.code}:{run.equipment_ref}"
    open_hold = Hold.objects.filter(
        rule__code=active.code, scope=Hold.Scope.PRESS_CYCLE, target=target, status="open"
    ).first()
    if open_hold is not None:
        open_hold.cells.add(run.cell)  # a cell of the same cycle reported later joins the hold
        return
    hold_press_cycle(
        run.station,
        run.equipment_ref,
        by=active.label,
        rule=active,
        reason=f"Short after pressing on {run.cell.serial} in press cycle {run.equipment_ref}",
    )


def _is_insulation_failure(run: ProcessRun) -> bool:
    return "insulation_fail" in run.defects or any(
        v["parameter"] == "insulation_resistance_mohm" and v["problem"] == "out_of_spec"
        for v in run.violations
    )


@rule(
    HoldRule.Code.BATCH_INSULATION_FAILURES,
    applies=_is_insulation_failure,
    parameters={"failures": int},
)
def batch_insulation_failures(active: HoldRule, run: ProcessRun) -> None:
    batch = run.cell.batch
    if _open_for(active, Hold.Scope.BATCH, batch.code):
        return
    threshold = int(active.parameters.get("failures", 2))
    failed_cells = (
        Cell.objects.filter(batch=batch, runs__station__kind="stacking")
        .filter(_insulation_failure_q())
        .distinct()
        .count()
    )
    if failed_cells >= threshold:
        hold_batch(
            batch,
            by=active.label,
            rule=active,
            reason=f"{failed_cells} cells failed insulation (hipot) in batch {batch.code}",
        )


def _insulation_failure_q():
    from django.db.models import Q

    return Q(runs__defects__contains=["insulation_fail"]) | Q(
        runs__measurements__name="insulation_resistance_mohm", runs__measurements__in_spec=False
    )


@rule(
    HoldRule.Code.FORMATION_HARD_SHORT,
    applies=lambda run: run.station.kind == "formation" and "short" in run.defects,
)
def formation_hard_short(active: HoldRule, run: ProcessRun) -> None:
    batch = run.cell.batch
    if _open_for(active, Hold.Scope.BATCH, batch.code):
        return
    hold_batch(
        batch,
        by=active.label,
        rule=active,
        reason=f"Hard short in formation on {run.cell.serial}; trace to press cycle and SE lot",
    )


@rule(
    HoldRule.Code.FORMATION_ICE_OUTLIERS,
    applies=lambda run: run.station.kind == "formation",
    parameters={"sigma": float, "cells": int, "min_cells": int},
)
def formation_ice_outliers(active: HoldRule, run: ProcessRun) -> None:
    """ICE below the batch centre - k sigma in >= N cells holds the batch.

    Centre and sigma are the median and 1.4826 x MAD: with the plain mean and standard deviation,
    two low cells in a batch of twenty inflate sigma so much that they can never be 3 sigma out.
    """
    batch = run.cell.batch
    if _open_for(active, Hold.Scope.BATCH, batch.code):
        return
    values = dict(
        Measurement.objects.filter(
            run__cell__batch=batch,
            run__station__kind="formation",
            name="initial_coulombic_efficiency",
        )
        .order_by("run__cell_id", "run__finished_at")
        .values_list("run__cell__serial", "value")
    )  # the latest formation result of each cell wins
    if len(values) < int(active.parameters.get("min_cells", 8)):
        return
    centre = statistics.median(values.values())
    sigma = 1.4826 * statistics.median(abs(v - centre) for v in values.values())
    if sigma == 0:
        return
    limit = centre - float(active.parameters.get("sigma", 3)) * sigma
    low = sorted(serial for serial, value in values.items() if value < limit)
    if len(low) >= int(active.parameters.get("cells", 2)):
        hold_batch(
            batch,
            by=active.label,
            rule=active,
            reason=f"ICE below {limit:.4f} (median - {active.parameters.get('sigma', 3)} sigma) in "
            f"{len(low)} cells: {', '.join(low[:10])}; trace to press cycle and SE lot",
        )
