"""A batch's first-cycle voltage-vs-capacity curves overlaid, its held and failed cells marked.

Engineers read the overlay for the cell that does not look like the others: a short plateau, a
charge that runs on (a soft short), a large first-cycle loss. A batch may hold thousands of
cells, so the chart draws at most OVERLAY_CURVES of them, each thinned to OVERLAY_POINTS: every
failed and every held cell first (those are what the page is read for), then the others spread
evenly over the batch by position, so a drift from first cell to last still shows. A cell counts
as failed when the run that gave its curve failed or the cell was scrapped, as held while an
open hold covers it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Exists, OuterRef

from batches.models import Batch, Cell, Curve, Hold, ProcessRun

VOLTAGE_VS_CAPACITY = "voltage_vs_capacity"
OVERLAY_CURVES = 60
OVERLAY_POINTS = 200

FAILED = "failed"
HELD = "held"
OTHER = "other"


@dataclass(frozen=True)
class Overlay:
    """What the batch page's chart draws, and how much was left out."""

    curves: list[dict[str, Any]]  # Chart.js datasets' data, failed and held ones last (on top)
    cells_with_curves: int
    failed: int
    held: int

    @property
    def shown(self) -> int:
        return len(self.curves)


def _thin(values: list[float], points: int) -> list[float]:
    """Every n-th point, n the smallest stride that fits `points`, and always the last one (the
    end of the discharge, where the first-cycle loss is read)."""
    stride = max(1, -(-len(values) // points))
    thinned = values[::stride]
    if values and (len(values) - 1) % stride:
        thinned.append(values[-1])
    return thinned


def _spread(items: list, count: int) -> list:
    """`count` items evenly spaced over `items` (all of them when there are fewer)."""
    if count <= 0:
        return []
    if len(items) <= count:
        return items
    return [items[i * len(items) // count] for i in range(count)]


def batch_overlay(
    batch: Batch, *, curves: int = OVERLAY_CURVES, points: int = OVERLAY_POINTS
) -> Overlay:
    """The batch's cells' voltage-vs-capacity curves from their latest formation run that has
    one (a re-run's replaces the first). Two queries: the curves' cells and states, then the
    points of those drawn."""
    open_hold = Hold.cells.through.objects.filter(
        cell=OuterRef("run__cell_id"), hold__status=Hold.Status.OPEN
    )
    rows = (
        Curve.objects.filter(run__cell__batch=batch, name=VOLTAGE_VS_CAPACITY)
        .annotate(held=Exists(open_hold))
        .order_by("run__cell__position", "run__finished_at", "run_id")
        .values_list(
            "id", "run__cell_id", "run__cell__serial", "run__verdict", "run__cell__status", "held"
        )
    )
    latest: dict[int, tuple] = {}
    for row in rows:
        latest[row[1]] = row  # the cell's last run wins
    states = {}
    for curve_id, _, serial, verdict, status, held in latest.values():
        failed = verdict == ProcessRun.Verdict.FAIL or status == Cell.Status.SCRAPPED
        states[curve_id] = (serial, FAILED if failed else HELD if held else OTHER)
    marked = [c for c, (_, state) in states.items() if state != OTHER]
    others = [c for c, (_, state) in states.items() if state == OTHER]
    chosen = marked[:curves] + _spread(others, curves - len(marked[:curves]))
    points_of = {
        curve_id: (x, y)
        for curve_id, x, y in Curve.objects.filter(id__in=chosen).values_list("id", "x", "y")
    }
    order = {OTHER: 0, HELD: 1, FAILED: 2}  # drawn last is drawn on top
    drawn = []
    for curve_id in sorted(chosen, key=lambda c: order[states[c][1]]):
        serial, state = states[curve_id]
        x, y = points_of[curve_id]
        drawn.append(
            {
                "cell": serial,
                "state": state,
                "points": [
                    {"x": qx, "y": vy}
                    for qx, vy in zip(_thin(list(x), points), _thin(list(y), points), strict=False)
                ],
            }
        )
    return Overlay(
        curves=drawn,
        cells_with_curves=len(states),
        failed=sum(state == FAILED for _, state in states.values()),
        held=sum(state == HELD for _, state in states.values()),
    )
