"""Every built-in hold rule is in force from `migrate` on: its first version, with the thresholds
its declaration defaults to, is written on any database that has none of the rule."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from audit.services import record_event
from batches.models import HoldRule
from quality.rules.registry import RULES


@transaction.atomic
def put_first_versions_in_force(**_signal: Any) -> list[HoldRule]:
    """Write version 1 of each rule that has no version yet; returns what it wrote. A rule that
    has versions is left as it is, even with none in force (quality retired it on purpose)."""
    known = set(HoldRule.objects.values_list("code", flat=True).distinct())
    written = []
    for code, rule in sorted(RULES.items()):
        if code in known:
            continue
        thresholds = {name: t.default for name, t in rule.thresholds.items()}
        written.append(
            HoldRule.objects.create(
                code=code,
                version=1,
                parameters=thresholds,
                in_force=True,
                note="First version: the rule's declared defaults",
            )
        )
        record_event(
            actor="migrate",
            verb="hold_rule_put_in_force",
            subject_type="hold_rule",
            subject=code,
            reason="put in force by migrate",
            data={"version": 1, "parameters": thresholds},
        )
    return written
