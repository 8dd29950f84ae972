"""Quality's state changes: new hold-rule thresholds put in force (grading: quality.grading)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import transaction

from audit.services import record_event
from batches.models import HoldRule
from core.errors import require_reason
from quality.rules import rule_parameters


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
    retired = [v.version for v in versions if v.in_force]
    HoldRule.objects.filter(code=code, in_force=True).update(in_force=False)
    new = HoldRule.objects.create(
        code=code,
        version=max((v.version for v in versions), default=0) + 1,
        parameters=thresholds,
        note=note,
        in_force=True,
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
