"""What quality does when the step engine moves (registered in QualityConfig.ready(), beside
grading a cell at the end of its route)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from batches.models import ProcessRun
from batches.services import StepContext
from quality.rules import apply_hold_rules, in_force, rules_for


def fire_hold_rules(run: ProcessRun, context: StepContext) -> Callable[[], Any] | None:
    """After a step: the rules in force that the run can fire, checked once it is written."""
    if versions := rules_for(run, context.read_once("hold_rules_in_force", in_force)):
        return partial(apply_hold_rules, run, versions)
    return None
