"""Reads of quality's rules: every hold rule with its versions and what each opened."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from django.db.models import Count

from batches.models import Hold, HoldRule
from quality.rules.registry import RULES

# ---------------------------------------------------------------- hold rules


@dataclass
class HoldRuleHistory:
    code: str
    label: str
    holds: str  # what a firing holds, as people read it
    thresholds: dict[str, int | float]  # the names its check reads, with their defaults
    versions: list[HoldRule]  # newest first, each with `holds_opened`

    @property
    def in_force(self) -> HoldRule | None:
        return next((v for v in self.versions if v.in_force), None)

    @property
    def active(self) -> bool:
        return self.in_force is not None

    @property
    def shown(self) -> HoldRule | None:
        """The version to show first: the one in force, else the latest (all retired)."""
        return self.in_force or next(iter(self.versions), None)


def hold_rule_histories() -> list[HoldRuleHistory]:
    """Every rule the code knows, with its versions and the holds each opened. One query."""
    versions: dict[str, list[HoldRule]] = defaultdict(list)
    for version in HoldRule.objects.annotate(holds_opened=Count("holds")).order_by(
        "code", "-version"
    ):
        versions[version.code].append(version)
    return [
        HoldRuleHistory(
            code=code,
            label=rule.label,
            holds=Hold.Scope(rule.holds).label,
            thresholds={name: t.default for name, t in rule.thresholds.items()},
            versions=versions[code],
        )
        for code, rule in sorted(RULES.items())
    ]
