"""The hold rules of DOMAIN.md, one module each, declared in the registry (quality.rules.registry).

Each rule's thresholds live in versioned HoldRule rows; the code here is the logic a row's code
names. A rule fires at most once per open target (a database constraint).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.utils.translation import gettext as _

from batches.hooks import StepApplied
from batches.models import HoldRule
from core.errors import DomainError
from quality.rules import (  # noqa: F401  (each module declares its rule in the registry)
    batch_insulation_failures,
    dry_room_excursion,
    dry_room_exposure,
    equipment_unusable,
    formation_hard_short,
    formation_ice_outliers,
    out_of_spec,
    press_cycle_short,
    spc_signal,
    unusable_lot,
)
from quality.rules.registry import RULES


def rule_thresholds(code: str) -> Mapping[str, type]:
    """The thresholds rule `code` reads (name -> int or float); none for a rule that has none."""
    return {name: t.kind for name, t in RULES[code].thresholds.items()}


def rule_parameters(code: str, parameters: Mapping[str, Any]) -> dict[str, int | float]:
    """The thresholds of a new version of rule `code`, checked: names the rule reads, positive
    numbers, whole where the rule counts."""
    if code not in RULES:
        raise DomainError("unknown_rule", _("No hold rule %(code)s.") % {"code": code})
    expected, errors = rule_thresholds(code), {}
    for name, value in parameters.items():
        kind = expected.get(name)
        if kind is None:
            errors[name] = (
                _("%(rule)s reads no such threshold (it reads: %(thresholds)s).")
                % {"rule": code, "thresholds": ", ".join(expected)}
                if expected
                else _("%(rule)s reads no such threshold (it reads none).") % {"rule": code}
            )
        elif isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            errors[name] = _("A positive number.")
        elif kind is int and value != int(value):
            errors[name] = _("A whole number.")
    if errors:
        raise DomainError("invalid", _("Invalid thresholds."), errors=errors)
    return {name: expected[name](value) for name, value in parameters.items()}


def in_force() -> list[HoldRule]:
    """The version in force of every rule that has one."""
    return list(HoldRule.objects.filter(in_force=True, code__in=RULES).order_by("code"))


def rules_for(step: StepApplied, versions: Iterable[HoldRule]) -> list[HoldRule]:
    """The versions in force whose rule the step can fire."""
    return [v for v in versions if RULES[v.code].applies(step)]


def apply_hold_rules(step: StepApplied, versions: Iterable[HoldRule] | None = None) -> None:
    """Run the rules in force (all of them unless given) against a step just recorded, inside
    the recording transaction."""
    for version in rules_for(step, in_force() if versions is None else versions):
        RULES[version.code].check(version, step)
