"""The hold rules' registry: each rule, declared once in its own module, with its code, what it
holds, the thresholds it reads (type and default) and its check. The hold-rule rows (versions of
a rule's thresholds), the rules page, the admin and the checks all read these declarations.

A rule has two parts: `applies`, a cheap test of a step alone (its run and the lots it consumed,
in memory, no query) that says whether it can fire the rule at all, and `check`, which may query
and open a hold once the run is written. Most steps fire nothing, so the step engine follows up
only those some rule applies to.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from batches.hooks import StepApplied
from batches.models import Hold, HoldRule

RuleCheck = Callable[[HoldRule, StepApplied], None]


@dataclass(frozen=True)
class Threshold:
    """A number a rule reads from its version's parameters, with the value it takes when absent."""

    kind: type  # int or float
    default: int | float


@dataclass(frozen=True)
class Rule:
    code: str
    label: str
    holds: str  # a Hold.Scope: what a firing holds
    applies: Callable[[StepApplied], bool]
    check: RuleCheck
    thresholds: Mapping[str, Threshold] = field(default_factory=dict)

    def threshold(self, version: HoldRule, name: str) -> int | float:
        """Threshold `name` of a version of this rule: its own value, else the declared default."""
        declared = self.thresholds[name]
        return declared.kind(version.parameters.get(name, declared.default))


RULES: dict[str, Rule] = {}


def rule(
    code: str,
    *,
    label: str,
    holds: str,
    applies: Callable[[StepApplied], bool],
    thresholds: Mapping[str, Threshold] | None = None,
) -> Callable[[RuleCheck], RuleCheck]:
    """Declare the rule whose check the decorated function is."""
    if holds not in Hold.Scope.values:
        raise ValueError(f"{code}: {holds!r} is not a hold scope")

    def register(check: RuleCheck) -> RuleCheck:
        RULES[code] = Rule(
            code=code,
            label=label,
            holds=holds,
            applies=applies,
            check=check,
            thresholds=dict(thresholds or {}),
        )
        return check

    return register


def open_hold_for(version: HoldRule, scope: str, target: str) -> Hold | None:
    """The open hold this rule opened on a target, if any (a rule fires once per open target)."""
    return Hold.objects.filter(
        rule__code=version.code, scope=scope, target=target, status=Hold.Status.OPEN
    ).first()
