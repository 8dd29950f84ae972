"""Reads of the record that span relations: batches, cells, lots and holds, for pages and the API.

Each selector runs a fixed number of queries, whatever the number of cells, runs or holds it
covers: counts are aggregated in the database and related rows are joined or prefetched.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet
from django.urls import reverse

from audit.models import Event
from batches.models import (
    Batch,
    Cell,
    CellDesign,
    Consumption,
    Curve,
    Hold,
    MaterialLot,
    Measurement,
    ProcessRun,
)
from lines.models import Line, RouteStep, Station

ACTIVE_BATCH = (Batch.Status.PLANNED, Batch.Status.IN_PROGRESS)
# A chart of more points than a screen has pixels only costs transfer and drawing time.
CURVE_POINTS_SHOWN = 1500


# ---------------------------------------------------------------- cells and holds


def open_hold_cells() -> QuerySet:
    return Hold.cells.through.objects.filter(hold__status=Hold.Status.OPEN)


def cell_state(cell: Cell) -> str:
    """A cell's status as people read it: on_hold while an open hold covers it, else its status.

    Needs `held` from CellQuerySet.with_hold_state()."""
    return "on_hold" if getattr(cell, "held", False) else cell.status


def holds_with_details(queryset: QuerySet | None = None) -> QuerySet:
    """Holds with what the queue and timelines show about them, in one query."""
    queryset = Hold.objects.all() if queryset is None else queryset
    return queryset.select_related(
        "rule", "opened_by", "closed_by", "batch", "lot", "station", "run__step"
    ).annotate(cell_count=Count("cells", distinct=True))


def open_holds(*, line: Line | None = None) -> QuerySet:
    """Open holds, oldest first (the queue's order), optionally only those touching a line."""
    holds = Hold.objects.filter(status=Hold.Status.OPEN)
    if line is not None:
        on_line = Hold.cells.through.objects.filter(hold=OuterRef("pk"), cell__batch__line=line)
        holds = holds.filter(Q(batch__line=line) | Exists(on_line))
    return holds_with_details(holds).order_by("opened_at", "id")


def holds_list(*, status: str = "") -> QuerySet:
    holds = Hold.objects.all()
    if status:
        holds = holds.filter(status=status)
    order = ("opened_at", "id") if status == Hold.Status.OPEN else ("-opened_at", "-id")
    return holds_with_details(holds).order_by(*order)


# ---------------------------------------------------------------- batch progress


@dataclass
class StepProgress:
    step: RouteStep
    passed: int = 0
    failed: int = 0
    waiting: int = 0
    total: int = 0

    @property
    def passed_pct(self) -> float:
        return 100.0 * self.passed / self.total if self.total else 0.0

    @property
    def failed_pct(self) -> float:
        return 100.0 * self.failed / self.total if self.total else 0.0


@dataclass
class BatchProgress:
    batch: Batch
    steps: list[StepProgress]
    cells: int = 0
    completed: int = 0
    scrapped: int = 0
    held: int = 0


def progress_of(batches: Sequence[Batch]) -> list[BatchProgress]:
    """Per route step of each batch: cells that passed it, failed it, wait for it. Three queries
    for any number of batches; each batch needs its route's steps prefetched
    (`route__steps`)."""
    ids = [b.pk for b in batches]
    runs = {
        (row["cell__batch_id"], row["step_id"]): row
        for row in ProcessRun.objects.filter(cell__batch_id__in=ids)
        .values("cell__batch_id", "step_id")
        .annotate(
            passed=Count("cell", distinct=True, filter=Q(verdict=ProcessRun.Verdict.PASS)),
            failed=Count("cell", distinct=True, filter=Q(verdict=ProcessRun.Verdict.FAIL)),
        )
    }
    waiting = {
        (row["batch_id"], row["next_step_id"]): row["n"]
        for row in Cell.objects.filter(batch_id__in=ids, next_step__isnull=False)
        .values("batch_id", "next_step_id")
        .annotate(n=Count("id"))
    }
    counts = {
        row["batch_id"]: row
        for row in Cell.objects.filter(batch_id__in=ids)
        .with_hold_state()
        .values("batch_id")
        .annotate(
            total=Count("id"),
            completed=Count("id", filter=Q(status=Cell.Status.COMPLETED)),
            scrapped=Count("id", filter=Q(status=Cell.Status.SCRAPPED)),
            held_count=Count("id", filter=Q(held=True)),
        )
    }
    progress = []
    for batch in batches:
        count = counts.get(batch.pk, {})
        total = count.get("total", 0)
        steps = [
            StepProgress(
                step=step,
                passed=runs.get((batch.pk, step.pk), {}).get("passed", 0),
                failed=runs.get((batch.pk, step.pk), {}).get("failed", 0),
                waiting=waiting.get((batch.pk, step.pk), 0),
                total=total,
            )
            for step in batch.route.steps.all()
        ]
        progress.append(
            BatchProgress(
                batch=batch,
                steps=steps,
                cells=total,
                completed=count.get("completed", 0),
                scrapped=count.get("scrapped", 0),
                held=count.get("held_count", 0),
            )
        )
    return progress


def batches_with_route(queryset: QuerySet | None = None) -> QuerySet:
    queryset = Batch.objects.all() if queryset is None else queryset
    return queryset.select_related("line", "design", "route").prefetch_related("route__steps")


def batches_in_progress(line: Line) -> list[BatchProgress]:
    batches = batches_with_route(Batch.objects.filter(line=line, status__in=ACTIVE_BATCH))
    return progress_of(list(batches.order_by("created_at", "id")))


def batch_list(*, line: str = "", status: str = "") -> QuerySet:
    batches = Batch.objects.select_related("line", "design", "route").annotate(
        cell_count=Count("cells")
    )
    if line:
        batches = batches.filter(line__code=line)
    if status:
        batches = batches.filter(status=status)
    return batches.order_by("-created_at", "-id")


# ---------------------------------------------------------------- batch view


def batch_detail(code: str) -> Batch:
    """The batch with its line, design and route steps; Batch.DoesNotExist when unknown."""
    return batches_with_route(Batch.objects.select_related("created_by")).get(code=code)


def batch_cells(batch: Batch, *, status: str = "", step: str = "", grade: str = "") -> QuerySet:
    """The cell table of a batch, filterable by status (or on_hold), next step and grade."""
    cells = batch.cells.with_hold_state().select_related("next_step").order_by("position")
    if status == "on_hold":
        cells = cells.filter(held=True)
    elif status:
        cells = cells.filter(status=status)
    if step:
        cells = cells.filter(next_step__station_kind=step)
    if grade:
        cells = cells.filter(grade=grade)
    return cells


def grades_of(batch: Batch) -> list[str]:
    return list(
        batch.cells.exclude(grade="").values_list("grade", flat=True).distinct().order_by("grade")
    )


def holds_of_batch(batch: Batch) -> QuerySet:
    """Holds on the batch itself and on any of its cells (cell, lot and press-cycle holds)."""
    of_its_cells = Hold.cells.through.objects.filter(hold=OuterRef("pk"), cell__batch=batch)
    holds = Hold.objects.filter(Q(batch=batch) | Exists(of_its_cells))
    return holds_with_details(holds).order_by("-opened_at", "-id")


def batch_timeline(batch: Batch, holds: Iterable[Hold], *, limit: int = 200) -> list[Event]:
    """The batch's own events and those of its holds, newest first."""
    hold_ids = [h.pk for h in holds]
    events = Event.objects.filter(
        Q(subject_type="batch", subject=batch.code)
        | Q(verb__in=("hold_opened", "hold_closed"), data__hold__in=hold_ids)
    )
    return list(events.order_by("-occurred_at", "-id")[:limit])


# ---------------------------------------------------------------- cell view


def cell_detail(serial: str) -> Cell:
    """The cell with its batch, line, design and route; Cell.DoesNotExist when unknown."""
    return (
        Cell.objects.with_hold_state()
        .select_related("batch__line", "batch__design", "batch__route", "next_step")
        .get(serial=serial)
    )


def genealogy_of(cell: Cell) -> list[Consumption]:
    """The material lots a cell consumed, by role, with the roll each sheet lot was cut from."""
    return list(
        Consumption.objects.filter(cell=cell)
        .select_related("lot__parent", "run")
        .order_by("role", "recorded_at", "id")
    )


def runs_of(cell: Cell, *, with_curves: bool = True) -> list[ProcessRun]:
    """Every run of a cell in route order (a reworked step's runs in time order), with
    measurements and, optionally, curves."""
    runs = (
        ProcessRun.objects.filter(cell=cell)
        .select_related("step", "station", "recipe_version__recipe")
        .prefetch_related(Prefetch("measurements", queryset=Measurement.objects.order_by("name")))
        .order_by("step__position", "finished_at", "id")
    )
    if with_curves:
        runs = runs.prefetch_related(Prefetch("curves", queryset=Curve.objects.order_by("name")))
    return list(runs)


def curve_chart(curve: Curve) -> dict[str, Any]:
    """A curve as Chart.js points, thinned to at most CURVE_POINTS_SHOWN by even striding."""
    stride = max(1, -(-len(curve.x) // CURVE_POINTS_SHOWN))
    points = [{"x": x, "y": y} for x, y in zip(curve.x[::stride], curve.y[::stride], strict=False)]
    return {
        "id": f"curve-{curve.pk}",
        "name": curve.name,
        "unit": curve.unit,
        "x_label": curve.x_label,
        "points": points,
        "total_points": len(curve.x),
    }


def holds_of_cell(cell: Cell) -> QuerySet:
    return holds_with_details(cell.holds.all()).order_by("-opened_at", "-id")


def cell_events(cell: Cell, *, limit: int = 200) -> list[Event]:
    events = Event.objects.filter(subject_type="cell", subject=cell.serial)
    return list(events.order_by("-occurred_at", "-id")[:limit])


# ---------------------------------------------------------------- lots


def lot_detail(code: str) -> MaterialLot:
    return MaterialLot.objects.select_related("parent").get(code=code)


def lot_consumers(lot: MaterialLot) -> QuerySet:
    """Forward genealogy: every cell that consumed the lot, with where it is now."""
    held = open_hold_cells().filter(cell=OuterRef("cell_id"))
    return (
        Consumption.objects.filter(lot=lot)
        .select_related("cell__batch__line", "cell__next_step")
        .annotate(held=Exists(held))
        .order_by("cell__batch__code", "cell__position")
    )


def lot_consumer_counts(lot: MaterialLot) -> dict[str, int]:
    """How many of the lot's cells are where, in one query."""
    held = open_hold_cells().filter(cell=OuterRef("pk"))
    return (
        Cell.objects.filter(consumptions__lot=lot)
        .annotate(held=Exists(held))
        .aggregate(
            total=Count("id", distinct=True),
            in_process=Count("id", distinct=True, filter=Q(status=Cell.Status.IN_PROCESS)),
            completed=Count("id", distinct=True, filter=Q(status=Cell.Status.COMPLETED)),
            scrapped=Count("id", distinct=True, filter=Q(status=Cell.Status.SCRAPPED)),
            on_hold=Count("id", distinct=True, filter=Q(held=True)),
        )
    )


def lot_list(*, role: str = "", status: str = "") -> QuerySet:
    lots = MaterialLot.objects.select_related("parent").annotate(
        cell_count=Count("consumptions__cell", distinct=True)
    )
    if role:
        lots = lots.filter(role=role)
    if status:
        lots = lots.filter(status=status)
    return lots.order_by("-received_at", "code")


# ---------------------------------------------------------------- search


@dataclass
class SearchResults:
    query: str
    exact_url: str = ""
    cells: list[Cell] = field(default_factory=list)
    batches: list[Batch] = field(default_factory=list)
    lots: list[MaterialLot] = field(default_factory=list)

    @property
    def found(self) -> bool:
        return bool(self.cells or self.batches or self.lots)


def search(query: str, *, limit: int = 20) -> SearchResults:
    """Find a cell serial, batch code or lot code: an exact match, else those starting with it."""
    query = query.strip()
    results = SearchResults(query=query)
    if not query:
        return results
    exact = (
        Cell.objects.filter(serial__iexact=query).first()
        or Batch.objects.filter(code__iexact=query).first()
        or MaterialLot.objects.filter(code__iexact=query).first()
    )
    if exact is not None:
        results.exact_url = exact_url(exact)
        return results
    # Prefix matches use the unique indexes' btree (upper() would not), so they stay fast.
    results.cells = list(
        Cell.objects.filter(serial__startswith=query.upper()).select_related("batch")[:limit]
    )
    results.batches = list(Batch.objects.filter(code__istartswith=query)[:limit])
    results.lots = list(MaterialLot.objects.filter(code__istartswith=query)[:limit])
    return results


def exact_url(obj: Cell | Batch | MaterialLot) -> str:
    if isinstance(obj, Cell):
        return reverse("cell", args=[obj.serial])
    if isinstance(obj, Batch):
        return reverse("batch", args=[obj.code])
    return reverse("lot", args=[obj.code])


# ---------------------------------------------------------------- engineers' API


def lines_with_master_data() -> QuerySet:
    return Line.objects.prefetch_related(
        Prefetch("stations", queryset=Station.objects.order_by("code")),
        "routes__steps",
    ).order_by("code")


def designs_by_line() -> dict[int, list[str]]:
    """The designs each line makes (has batches of), by line id, in one query."""
    made: dict[int, list[str]] = defaultdict(list)
    for line_id, code in (
        CellDesign.objects.filter(batches__isnull=False)
        .values_list("batches__line_id", "code")
        .distinct()
        .order_by("batches__line_id", "code")
    ):
        made[line_id].append(code)
    return made


def batch_cells_for_api(batch: Batch) -> QuerySet:
    return batch.cells.with_hold_state().select_related("next_step").order_by("position")


def lot_cell_serials(lot: MaterialLot) -> list[str]:
    return list(
        Consumption.objects.filter(lot=lot)
        .order_by("cell__serial")
        .values_list("cell__serial", flat=True)
        .distinct()
    )


# ---------------------------------------------------------------- measurements


def latest_measurements(
    cell_ids: Iterable[int], names: Iterable[str], *, passed_only: bool = False
) -> dict[int, dict[str, float]]:
    """The latest value of each named measurement per cell (a re-run step's value wins)."""
    latest: dict[int, dict[str, float]] = {}
    rows = Measurement.objects.filter(run__cell_id__in=list(cell_ids), name__in=list(names))
    if passed_only:
        rows = rows.filter(run__verdict=ProcessRun.Verdict.PASS)
    rows = rows.order_by("run__cell_id", "name", "run__finished_at", "run_id").values_list(
        "run__cell_id", "name", "value"
    )
    for cell_id, name, value in rows:
        latest.setdefault(cell_id, {})[name] = value
    return latest
