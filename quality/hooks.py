"""What quality does when the step engine moves (registered in QualityConfig.ready(), beside
grading a cell at the end of its route)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from batches.hooks import StepApplied
from quality.rules import apply_hold_rules, in_force, rules_for


def fire_hold_rules(step: StepApplied) -> Callable[[], Any] | None:
    """After a step: the rules in force that it can fire, checked once its run is written."""
    if versions := rules_for(step, step.context.read_once("hold_rules_in_force", in_force)):
        return partial(apply_hold_rules, step, versions)
    return None
