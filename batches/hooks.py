"""Where the apps above the step engine react to it, inside the engine's transaction.

The engine (batches.services) never imports those apps: quality, for one, registers in its
AppConfig.ready() what fires hold rules after a step and what grades a cell at the end of its
route. An explicit registry rather than Django signals: greppable, ordered, and run in the
caller's transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from batches.models import Cell, MaterialLot, ProcessRun
    from batches.services import StepContext


@dataclass(frozen=True)
class StepApplied:
    """A result just judged and staged: its run (not written yet), the lots it consumed by role,
    and the chunk's context (what is read once for many results)."""

    run: ProcessRun
    lots: Mapping[str, MaterialLot]
    context: StepContext


# A step hook looks at a step just staged (no query needed for most runs) and returns what must
# follow once the run is written, or None when it has nothing to do.
AfterStep = Callable[[StepApplied], Callable[[], Any] | None]
RouteCompleted = Callable[..., None]  # (cell, *, by)

_after_step: list[AfterStep] = []
_route_completed: list[RouteCompleted] = []


def on_after_step(hook: AfterStep) -> AfterStep:
    if hook not in _after_step:
        _after_step.append(hook)
    return hook


def on_route_completed(hook: RouteCompleted) -> RouteCompleted:
    if hook not in _route_completed:
        _route_completed.append(hook)
    return hook


def after_step_follow_ups(step: StepApplied) -> list[Callable[[], Any]]:
    """What the registered hooks want done once the step's run is written."""
    return [f for hook in _after_step if (f := hook(step)) is not None]


def route_completed(cell: Cell, *, by: Any) -> None:
    """A cell finished its route (its last run written): every registered hook, in order."""
    for hook in _route_completed:
        hook(cell, by=by)
