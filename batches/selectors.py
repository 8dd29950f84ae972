"""Reads of the record that span relations: batches, cells, lots and holds, for pages and the API.

Each selector runs a fixed number of queries, whatever the number of cells, runs or holds it
covers: counts are aggregated in the database and related rows are joined or prefetched.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, models
from django.db.models import (
    Count,
    Exists,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Sum,
    prefetch_related_objects,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce
from django.urls import reverse

from audit.models import Event
from batches.models import (
    Batch,
    BatchStepCount,
    Cell,
    Consumption,
    Curve,
    Hold,
    HoldBatch,
    LotConsumerCount,
    MaterialLot,
    Measurement,
    ProcessRun,
)
from core.renderers import JSONText
from lines.models import CellDesign, Line, RouteStep, Station, StationKind
from lines.selectors import zones_with_station_codes

ACTIVE_BATCH = (Batch.Status.PLANNED, Batch.Status.IN_PROGRESS)
# A chart of more points than a screen has pixels only costs transfer and drawing time.
CURVE_POINTS_SHOWN = 1500


# ---------------------------------------------------------------- cells and holds


def open_hold_cells() -> QuerySet:
    return Hold.cells.through.objects.filter(hold__status=Hold.Status.OPEN)


def cell_state(cell: Cell) -> str:
    """A cell's status as people read it: on_hold while an open hold covers it, else its status.
    A scrapped cell reads scrapped even under an open hold: it awaits no disposition.

    Needs `held` from CellQuerySet.with_hold_state()."""
    return state_of(cell.status, held=getattr(cell, "held", False))


def state_of(status: str, *, held: bool) -> str:
    """cell_state from a cell's status and whether an open hold covers it."""
    if status == Cell.Status.SCRAPPED:
        return status
    return "on_hold" if held else status


def holds_with_details(queryset: QuerySet | None = None) -> QuerySet:
    """Holds with what the queue, the lists and the API show about them, in one query: who or
    which rule opened them, who closed them, how many cells they hold. Not the batch, lot,
    station or result a hold names (its scope and target say which): joining those too made
    PostgreSQL spend several times the query's run in planning the joins' order."""
    queryset = Hold.objects.all() if queryset is None else queryset
    return queryset.select_related("rule", "opened_by", "closed_by").annotate(
        cell_count=_cells_of(Hold.cells.through, "hold")
    )


def _cells_of(model: type[models.Model], outer: str) -> Coalesce:
    """How many cells `model`'s rows of the outer row name, as a subquery: PostgreSQL then counts
    for the rows a page shows, where a join and GROUP BY counts for every row before the page is
    cut (every batch's cells, every hold's cells). Rows, not distinct cells: a hold holds a cell
    once, so the count reads the index alone. (A lot's consumers are summed in LotConsumerCount.)"""
    counted = (
        model.objects.filter(**{outer: OuterRef("pk")})
        .order_by()
        .values(outer)
        .annotate(n=Count("*"))
        .values("n")
    )
    return Coalesce(Subquery(counted), 0)


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
    """Per route step of each batch: cells that passed it, failed it, wait for it. Four queries
    for any number of batches; each batch needs its route's steps prefetched
    (`route__steps`)."""
    ids = [b.pk for b in batches]
    runs = {  # a route has one step of each kind; the sums of a few rows per batch and step
        (row["batch_id"], row["step"]): row
        for row in BatchStepCount.objects.filter(batch_id__in=ids)
        .values("batch_id", "step")
        .annotate(passed=Sum("passed"), failed=Sum("failed"))
    }
    # Not ordered: Cell's default ordering (by batch) would join the batches into each count.
    cells = Cell.objects.filter(batch_id__in=ids).order_by()
    # Every cell by its next step, from batches_cell_batch_step_idx alone (Count("*"): a count
    # of ids would read each cell's row): the cells waiting at each step, and with no next step
    # those that finished their route, completed or scrapped (the cell's check constraint).
    waiting: dict[tuple[int, int], int] = {}
    total: dict[int, int] = defaultdict(int)
    finished: dict[int, int] = defaultdict(int)
    for batch_id, next_step_id, n in (
        cells.values("batch_id", "next_step_id")
        .annotate(n=Count("*"))
        .values_list("batch_id", "next_step_id", "n")
    ):
        total[batch_id] += n
        if next_step_id is None:
            finished[batch_id] += n
        else:
            waiting[(batch_id, next_step_id)] = n
    # Of the finished cells, the scrapped: their rows read for the status, finished cells only.
    # Counted in a FILTER, not a WHERE: with status in the WHERE, PostgreSQL reads the year's
    # scrapped cells from batches_cell_scrapped_idx and drops those of other batches.
    scrapped = dict(
        cells.filter(next_step__isnull=True)
        .values("batch_id")
        .annotate(n=Count("status", filter=Q(status=Cell.Status.SCRAPPED)))
        .values_list("batch_id", "n")
    )
    held = dict(
        cells.on_hold().values("batch_id").annotate(n=Count("*")).values_list("batch_id", "n")
    )
    progress = []
    for batch in batches:
        cells_of_batch = total[batch.pk]
        steps = [
            StepProgress(
                step=step,
                passed=runs.get((batch.pk, step.station_kind), {}).get("passed", 0),
                failed=runs.get((batch.pk, step.station_kind), {}).get("failed", 0),
                waiting=waiting.get((batch.pk, step.pk), 0),
                total=cells_of_batch,
            )
            for step in batch.route.steps.all()
        ]
        progress.append(
            BatchProgress(
                batch=batch,
                steps=steps,
                cells=cells_of_batch,
                completed=finished[batch.pk] - scrapped.get(batch.pk, 0),
                scrapped=scrapped.get(batch.pk, 0),
                held=held.get(batch.pk, 0),
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
        cell_count=_cells_of(Cell, "batch")
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
    # One list of ids from two indexed reads: as `batch = .. OR EXISTS (its cells)`, PostgreSQL
    # tests every hold of the year against the batch's cells; and the holds of its cells are
    # noted per batch (HoldBatch), not found through its ten thousand cells.
    own = Hold.objects.filter(batch=batch).order_by().values("pk")
    of_its_cells = HoldBatch.objects.filter(batch=batch).values("hold_id")
    holds = Hold.objects.filter(pk__in=own.union(of_its_cells, all=True))
    return holds_with_details(holds).order_by("-opened_at", "-id")


# The newest holds a batch's history lists.
HOLDS_SHOWN = 50


@dataclass
class BatchHolds:
    """What a batch's history shows of its holds: the newest `shown`, and when each of them
    was opened and closed (for the timeline's events)."""

    shown: list[Hold]
    times: dict[int, tuple[datetime, datetime | None]]  # id -> (opened_at, closed_at)


def batch_holds(batch: Batch, *, shown: int | None = None) -> BatchHolds:
    """The batch's holds as its history shows them (two queries): the newest `shown`
    (HOLDS_SHOWN by default) in full, and every one's times."""
    times = {
        pk: (opened_at, closed_at)  # newest first
        for pk, opened_at, closed_at in holds_of_batch(batch).values_list(
            "pk", "opened_at", "closed_at"
        )
    }
    # The holds listed by their ids: a batch has hundreds among the year's tens of thousands.
    newest = list(times)[: HOLDS_SHOWN if shown is None else shown]
    detailed = holds_with_details().order_by("-opened_at", "-id")
    return BatchHolds(shown=list(detailed.filter(pk__in=newest)), times=times)


def open_holds_of_batch(batch: Batch) -> list[Hold]:
    """The batch's open holds, on it or on any of its cells, each with what its form shows."""
    return list(holds_of_batch(batch).filter(status=Hold.Status.OPEN))


# A hold's events are written in the transaction that opens or closes it, after its opened_at or
# closed_at is set: at most this much later (a disposition of thousands of cells takes seconds).
HOLD_EVENT_LAG = timedelta(hours=1)
HOLD_VERBS = ("hold_opened", "hold_closed")  # audit_event_hold_idx's


def batch_timeline(
    batch: Batch,
    hold_times: Mapping[int, tuple[datetime, datetime | None]],
    *,
    limit: int = 200,
) -> list[Event]:
    """The batch's own events and those of its holds (id -> opened_at, closed_at), the newest
    `limit`, newest first."""
    # Two queries, each on its own index. As one OR, or ordered by time with a limit, PostgreSQL
    # walks every month's events by time looking for them. A hold has two events at most, each
    # at or just after its hold's time: the newest `limit` of those times and of the batch's own
    # events bound which holds' events can be among the newest, and the months to look in.
    own = Event.objects.filter(subject_type="batch", subject=batch.code)
    events = {e.pk: e for e in own.order_by("-occurred_at", "-id")[:limit]}
    # A batch hold's events are the batch's own too: counted once, by its hold's times.
    moments = sorted(
        [e.occurred_at for e in events.values() if _hold_of(e) not in hold_times]
        + [moment for pair in hold_times.values() for moment in pair if moment is not None],
        reverse=True,
    )
    since = moments[limit - 1] if len(moments) >= limit else None
    last_moments = {pk: closed_at or opened_at for pk, (opened_at, closed_at) in hold_times.items()}
    holds = [
        pk for pk, last in last_moments.items() if since is None or last + HOLD_EVENT_LAG >= since
    ]
    if holds:
        of_holds = Event.objects.filter(
            verb__in=HOLD_VERBS,
            data__hold__in=holds,
            occurred_at__lt=max(last_moments[pk] for pk in holds) + HOLD_EVENT_LAG,
        ).order_by()
        if since is not None:
            of_holds = of_holds.filter(occurred_at__gte=since)
        events.update((e.pk, e) for e in of_holds)
    return sorted(events.values(), key=lambda e: (e.occurred_at, e.pk), reverse=True)[:limit]


def _hold_of(event: Event) -> int | None:
    """The hold an event opened or closed."""
    if event.verb in HOLD_VERBS and isinstance(event.data, dict):
        return event.data.get("hold")
    return None


# ---------------------------------------------------------------- cell view


def cell_detail(serial: str) -> Cell:
    """The cell with its batch, line, design and route; Cell.DoesNotExist when unknown."""
    return (
        Cell.objects.with_hold_state()
        .select_related("batch__line", "batch__design", "batch__route", "next_step")
        .get(serial=serial)
    )


def genealogy_of(cell: Cell) -> list[Consumption]:
    """The material lots a cell consumed, by role, each with `ancestry`: the lots it was cut
    from, the nearest first (a sheet lot's roll, that roll's parent...)."""
    consumptions = list(
        Consumption.objects.filter(cell=cell)
        .select_related("lot__parent", "run")
        .order_by("role", "recorded_at", "id")
    )
    consumed = [[c.lot_id for c in consumptions]]
    above = RawSQL(_LOT_TREE.format(join="lot.id = tree.parent_id"), consumed)
    lots = {lot.pk: lot for lot in MaterialLot.objects.filter(id__in=above)}
    for consumption in consumptions:
        consumption.ancestry, parent = [], consumption.lot.parent_id
        while parent is not None:
            consumption.ancestry.append(lots[parent])
            parent = lots[parent].parent_id
    return consumptions


def runs_of(cell: Cell, *, with_curves: bool = True) -> list[ProcessRun]:
    """Every run of a cell in route order (a reworked step's runs in time order), with
    measurements and, optionally, curves."""
    runs = list(
        ProcessRun.objects.filter(cell=cell)
        .select_related("step", "station", "recipe_version__recipe")
        .order_by("step__position", "finished_at", "id")
    )
    # Their rows carry the runs' recorded_at, the key of the monthly partitions: naming those
    # times reads the months of this cell's runs only, not every month's index.
    times = sorted({run.recorded_at for run in runs})
    lookups = [
        Prefetch("measurements", Measurement.objects.filter(recorded_at__in=times).order_by("name"))
    ]
    if with_curves:
        lookups.append(
            Prefetch("curves", Curve.objects.filter(recorded_at__in=times).order_by("name"))
        )
    prefetch_related_objects(runs, *lookups)
    return runs


def _points(curve: Curve) -> list[dict[str, float]]:
    """A curve as Chart.js points, thinned to at most CURVE_POINTS_SHOWN by even striding."""
    stride = max(1, -(-len(curve.x) // CURVE_POINTS_SHOWN))
    return [{"x": x, "y": y} for x, y in zip(curve.x[::stride], curve.y[::stride], strict=False)]


_CYCLE_LOOP = re.compile(r"^voltage_vs_capacity(?:_cycle_(\d+))?$")
_PER_CYCLE = "_per_cycle"


def _panel_of(curve: Curve) -> tuple[str, str, str]:
    """Which chart a curve is drawn in, the chart's title and the curve's label in it: a
    formation file's V-Q loops share one chart (a series per cycle), the first cycle's dQ/dV of
    charge and discharge another, and the per-cycle figures one per unit."""
    if loop := _CYCLE_LOOP.match(curve.name):
        return "voltage_vs_capacity", "voltage vs capacity", f"cycle {loop.group(1) or 1}"
    if curve.name.startswith("dqdv_first_"):
        return "dqdv_first", "dQ/dV of the first cycle", curve.name.removeprefix("dqdv_first_")
    if curve.name.endswith(_PER_CYCLE):
        label = curve.name.removesuffix(_PER_CYCLE).replace("_", " ")
        return f"per_cycle:{curve.unit}", "per cycle", label
    return curve.name, curve.name.replace("_", " "), curve.name.replace("_", " ")


def curve_panels(run: ProcessRun) -> list[dict[str, Any]]:
    """A run's curves as charts (see _panel_of), in the order their first curve comes."""
    panels: dict[str, dict[str, Any]] = {}
    for curve in run.curves.all():
        key, title, label = _panel_of(curve)
        panel = panels.setdefault(
            key,
            {
                "id": f"run-{run.pk}-{key}",
                "title": title,
                "unit": curve.unit,
                "x_label": curve.x_label,
                "series": [],
            },
        )
        panel["series"].append(
            {"label": label, "points": _points(curve), "total_points": len(curve.x)}
        )
    for panel in panels.values():
        if panel["title"] == "per cycle":
            panel["title"] = "per cycle: " + ", ".join(s["label"] for s in panel["series"])
    return list(panels.values())


def holds_of_cell(cell: Cell) -> QuerySet:
    return holds_with_details(cell.holds.all()).order_by("-opened_at", "-id")


def cell_events(cell: Cell, *, limit: int = 200) -> list[Event]:
    events = Event.objects.filter(subject_type="cell", subject=cell.serial)
    return list(events.order_by("-occurred_at", "-id")[:limit])


# ---------------------------------------------------------------- lots


def lot_detail(code: str) -> MaterialLot:
    return MaterialLot.objects.select_related("parent").get(code=code)


def lot_consumers(tree: LotTree) -> QuerySet:
    """Forward genealogy: every cell that consumed the lot or a lot cut from it (at any depth),
    by the lot it consumed, with where it is now."""
    held = open_hold_cells().filter(cell=OuterRef("cell_id"))
    # In the order the cells were made (their ids): the (lot, cell) index gives a page of a lot's
    # 100,000 consumers without sorting them all.
    return (
        Consumption.objects.filter(lot_id__in=tree.ids_below)
        .select_related("cell__batch__line", "cell__next_step", "lot")
        .annotate(held=Exists(held))
        .order_by("cell_id", "lot_id")
    )


def lot_consumer_counts(tree: LotTree) -> dict[str, int]:
    """How many of the cells below the lot are where, and how many consumptions the forward
    genealogy lists (`consumptions`), in two queries.

    All but `on_hold` are sums of the lots' LotConsumerCount rows, which the database keeps in
    the transaction of every change: a few rows whatever the number of consumers. Holds open and
    close without touching them, so the cells on hold are counted from the open holds' cells."""
    counted = LotConsumerCount.objects.filter(lot_id__in=tree.ids_below).aggregate(
        consumptions=Coalesce(Sum("consumptions"), 0),
        **{
            key: Coalesce(Sum(column, filter=Q(lot_id=tree.lot.pk)), 0)
            for key, column in (
                ("total", "cells"),
                ("in_process", "in_process"),
                ("completed", "completed"),
                ("scrapped", "scrapped"),
            )
        },
    )
    consumed = Consumption.objects.filter(cell=OuterRef("pk"), lot_id__in=tree.ids_below)
    # Each cell once, however many lots it took; from the held cells, few beside a lot's.
    counted["on_hold"] = Cell.objects.filter(Exists(consumed)).on_hold().count()
    return counted


def lot_list(*, role: str = "", status: str = "", with_cell_count: bool = False) -> QuerySet:
    """Lots, newest first; `with_cell_count` annotates `cell_count`, how many cells consumed
    each (from LotConsumerCount: a few rows per lot, however many consumers)."""
    lots = MaterialLot.objects.select_related("parent")
    if with_cell_count:
        consumptions = (
            LotConsumerCount.objects.filter(lot=OuterRef("pk"))
            .order_by()
            .values("lot")
            .annotate(n=Sum("consumptions"))
            .values("n")
        )
        lots = lots.annotate(cell_count=Coalesce(Subquery(consumptions), 0))
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
    press_cycles: list[PressCycle] = field(default_factory=list)
    # Runs whose station event id matches: the cell a station's message was about.
    runs: list[ProcessRun] = field(default_factory=list)

    @property
    def found(self) -> bool:
        return bool(self.cells or self.batches or self.lots or self.press_cycles or self.runs)


@dataclass(frozen=True)
class PressCycle:
    """One load of a press: the cells pressed together, named by the press and the cycle id
    (the `equipment` of their pressing results)."""

    station: str
    ref: str

    @property
    def code(self) -> str:
        return f"{self.station}:{self.ref}"

    def runs(self) -> QuerySet:
        """The pressing runs of the cycle, with their cells and where those are now."""
        held = open_hold_cells().filter(cell=OuterRef("cell_id"))
        return (
            ProcessRun.objects.filter(
                station__code=self.station,
                station__kind=StationKind.PRESSING,
                equipment_ref=self.ref,
            )
            .select_related("cell__batch", "cell__next_step", "recipe_version__recipe")
            .prefetch_related("measurements")
            .annotate(held=Exists(held))
            .order_by("cell__serial", "finished_at")
        )

    def holds(self) -> QuerySet:
        return holds_with_details(
            Hold.objects.filter(scope=Hold.Scope.PRESS_CYCLE, target=self.code)
        ).order_by("-opened_at", "-id")


def press_cycles_named(query: str, *, limit: int = 20) -> list[PressCycle]:
    """Press cycles whose id contains `query`, or the one named "PRESS:CYCLE"."""
    station, _, ref = query.rpartition(":")
    runs = ProcessRun.objects.filter(station__kind=StationKind.PRESSING).exclude(equipment_ref="")
    if station and ref:
        runs = runs.filter(station__code__iexact=station, equipment_ref__iexact=ref)
    else:
        runs = runs.filter(_matching("equipment_ref", query))
    rows = (
        runs.values_list("station__code", "equipment_ref")
        .distinct()
        .order_by("equipment_ref", "station__code")[:limit]
    )
    return [PressCycle(station, ref) for station, ref in rows]


# Dashes a Japanese keyboard or a word processor types where a code has "-": NFKC folds the
# full-width hyphen-minus but leaves these (the katakana prolonged sound mark among them).
_DASHES = str.maketrans(
    dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u30fc\uff70", "-")
)
# Below three characters a trigram index cannot help; such a query matches from the start only.
_SHORTEST_ANYWHERE = 3


def normalised_query(raw: str) -> str:
    """What was typed or scanned, as codes are written: NFKC (full-width to ASCII), plain dashes."""
    return unicodedata.normalize("NFKC", raw).translate(_DASHES).strip()


def _matching(column: str, query: str) -> Q:
    """Rows whose `column` holds `query` anywhere, ignoring case (the trigram indexes of
    migration 0013 serve it), or starts with it when the query is too short for trigrams."""
    if len(query) < _SHORTEST_ANYWHERE:
        return Q(**{f"{column}__istartswith": query})
    return Q(**{f"{column}__icontains": query})


def search(query: str, *, limit: int = 20) -> SearchResults:
    """Find a cell serial, batch code, lot or supplier lot code, press cycle or station event id:
    an exact match opens it (a label scanner types the serial and Enter), else everything that
    holds the query anywhere."""
    query = normalised_query(query)
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
    results.cells = list(
        Cell.objects.filter(_matching("serial", query))
        .select_related("batch")
        .order_by("serial")[:limit]
    )
    results.batches = list(Batch.objects.filter(_matching("code", query)).order_by("code")[:limit])
    results.lots = list(
        MaterialLot.objects.filter(
            _matching("code", query) | _matching("supplier_lot", query)
        ).order_by("code")[:limit]
    )
    results.press_cycles = press_cycles_named(query, limit=limit)
    results.runs = list(
        ProcessRun.objects.filter(event_id=query)
        .select_related("cell", "station")
        .order_by("finished_at", "id")[:limit]
    )
    if len(results.press_cycles) == 1 and not (results.cells or results.batches or results.lots):
        cycle = results.press_cycles[0]
        if query.upper() in (cycle.ref.upper(), cycle.code.upper()):
            results.exact_url = reverse("press-cycle", args=[cycle.station, cycle.ref])
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
        Prefetch("zones", queryset=zones_with_station_codes()),
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


def batch_cells_for_api(batch: Batch) -> list[dict[str, str | None]]:
    """The batch's cells as the API lists them (`serial`, `status`, `step`), in position order.
    Plain rows, not model instances: a batch may hold 10,000 cells."""
    held = set(batch.cells.on_hold().values_list("id", flat=True))
    rows = batch.cells.order_by("position").values_list(
        "id", "serial", "status", "next_step__station_kind"
    )
    return [
        {"serial": serial, "status": state_of(status, held=pk in held), "step": step}
        for pk, serial, status, step in rows
    ]


# The consumers' serials as one JSON array, encoded by PostgreSQL (json_agg, a third faster than
# joining each serial's to_json): the API writes it as it is, where 100,000 rows read into Python
# and encoded one by one cost more than the query. In the order the cells were made (their ids),
# as the lot page lists them: the (lot, cell) index gives one lot's consumers in that order, so
# nothing is sorted (a lot's 100,000 serials sorted as text would cost more than reading them).
# The aggregate takes its rows in the subquery's order: a subquery with ORDER BY is read as one
# sorted stream, never split among parallel workers.
_SERIALS_JSON = f"""
    SELECT coalesce(json_agg(serial)::text, '[]') FROM (
        SELECT c.serial
        FROM (
            SELECT DISTINCT k.cell_id FROM {Consumption._meta.db_table} k WHERE {{lots}}
        ) consumer
        JOIN {Cell._meta.db_table} c ON c.id = consumer.cell_id
        WHERE c.id BETWEEN %s AND %s
        ORDER BY consumer.cell_id
    ) consumers
"""


def lot_cell_serials(lot_ids: Sequence[int]) -> JSONText:
    """Every cell that consumed one of the lots (a lot and those cut from it: lots_below), each
    once, in the order they were made: a JSON array of their serials (two queries)."""
    # The lots by their ids, not a recursive query PostgreSQL cannot estimate: it then knows a
    # lot's 100,000 consumers from its statistics and reads them from the (lot, cell) index,
    # instead of probing every cell in the plant for whether it consumed the lot. One lot by `=`:
    # an index scan for a list of values does not come out in index order.
    if len(lot_ids) == 1:
        lots, params = "k.lot_id = %s", [lot_ids[0]]
    else:
        lots, params = "k.lot_id = ANY(%s)", [list(lot_ids)]
    with connection.cursor() as cursor:
        # The range of the consumers' ids, as numbers the planner can weigh: it then reads the
        # cells of that range alongside the consumers (a merge join), where without it a year's
        # million cells looked cheaper to scan whole than to read a tenth of them by index.
        cursor.execute(
            f"SELECT min(cell_id), max(cell_id) FROM {Consumption._meta.db_table} k WHERE {lots}",
            params,
        )
        first, last = cursor.fetchone()
        if first is None:
            return JSONText("[]")
        cursor.execute(_SERIALS_JSON.format(lots=lots), [*params, first, last])
        return JSONText(cursor.fetchone()[0])


def lots_consumed(genealogy: list[Consumption]) -> list[MaterialLot]:
    """Every lot of a cell's genealogy (genealogy_of), then the lots those were cut from, each
    once."""
    lots: dict[int, MaterialLot] = {}
    for consumption in genealogy:
        lots.setdefault(consumption.lot_id, consumption.lot)
    for consumption in genealogy:
        for above in consumption.ancestry:
            lots.setdefault(above.pk, above)
    for lot in lots.values():  # every parent is among them: no query per lot
        lot.parent_code = lots[lot.parent_id].code if lot.parent_id else None
    return list(lots.values())


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


# ---------------------------------------------------------------- the lot tree

_LOT_TREE = """
    WITH RECURSIVE tree(id, parent_id, depth) AS (
        SELECT id, parent_id, 0 FROM batches_materiallot WHERE id = ANY(%s)
        UNION ALL
        SELECT lot.id, lot.parent_id, tree.depth + 1 FROM batches_materiallot lot
        JOIN tree ON {join}
        WHERE tree.depth < 50
    )
    SELECT DISTINCT id FROM tree
"""


def lot_and_descendant_ids(lot_ids: Iterable[int]) -> list[int]:
    """The lots and every lot cut from them, at any depth (a roll, its sheets, their pieces)."""
    with connection.cursor() as cursor:
        cursor.execute(_LOT_TREE.format(join="lot.parent_id = tree.id"), [list(lot_ids)])
        return [row[0] for row in cursor.fetchall()]


def lot_and_ancestor_ids(lot_ids: Iterable[int]) -> list[int]:
    """The lots and every lot they were cut from, up to the roll."""
    with connection.cursor() as cursor:
        cursor.execute(_LOT_TREE.format(join="lot.id = tree.parent_id"), [list(lot_ids)])
        return [row[0] for row in cursor.fetchall()]


@dataclass
class LotTree:
    """A lot with the lots it was cut from (`above`, the roll first) and the lots cut from it
    (`below`, each with its depth, in tree order: a lot, then the lots cut from it)."""

    lot: MaterialLot
    above: list[MaterialLot]
    below: list[tuple[MaterialLot, int]]

    @property
    def ids_below(self) -> list[int]:
        """The lot and every lot cut from it: the lots whose consumers it answers for."""
        return [self.lot.pk, *(lot.pk for lot, _ in self.below)]

    @property
    def ids_above(self) -> list[int]:
        """The lot and every lot it was cut from: the lots whose holds stop it."""
        return [self.lot.pk, *(lot.pk for lot in self.above)]


_LOTS_BELOW = """
    WITH RECURSIVE tree(id, depth) AS (
        SELECT id, 1 FROM batches_materiallot WHERE parent_id = %s
        UNION ALL
        SELECT lot.id, tree.depth + 1 FROM batches_materiallot lot
        JOIN tree ON lot.parent_id = tree.id WHERE tree.depth < 50
    )
    SELECT lot.*, tree.depth FROM tree JOIN batches_materiallot lot USING (id)
"""
_LOTS_ABOVE = """
    WITH RECURSIVE tree(id, depth) AS (
        SELECT parent_id, 1 FROM batches_materiallot WHERE id = %s AND parent_id IS NOT NULL
        UNION ALL
        SELECT lot.parent_id, tree.depth + 1 FROM batches_materiallot lot
        JOIN tree ON lot.id = tree.id WHERE lot.parent_id IS NOT NULL AND tree.depth < 50
    )
    SELECT lot.*, tree.depth FROM tree JOIN batches_materiallot lot USING (id)
"""


def lots_below(lot: MaterialLot) -> list[MaterialLot]:
    """Every lot cut from the lot, at any depth, each with its `depth` (one query)."""
    return list(MaterialLot.objects.raw(_LOTS_BELOW, [lot.pk]))


def lot_tree(lot: MaterialLot) -> LotTree:
    """The lot's place in its tree, in two queries."""
    above = sorted(MaterialLot.objects.raw(_LOTS_ABOVE, [lot.pk]), key=lambda x: -x.depth)
    children: dict[int, list[MaterialLot]] = defaultdict(list)
    for child in sorted(lots_below(lot), key=lambda x: x.code):
        children[child.parent_id].append(child)
    below: list[tuple[MaterialLot, int]] = []

    def walk(parent_id: int) -> None:
        for child in children[parent_id]:
            below.append((child, child.depth))
            walk(child.pk)

    walk(lot.pk)
    return LotTree(lot, above, below)


def holds_over_lot(tree: LotTree) -> QuerySet:
    """Holds of the lot and of the lots it was cut from (each stops this lot's cells too), and
    the holds of cells that consumed it when it could not be used."""
    return holds_with_details(
        Hold.objects.filter(
            Q(scope=Hold.Scope.LOT, lot_id__in=tree.ids_above)
            | Q(scope=Hold.Scope.CELL, lot=tree.lot)
        )
    ).order_by("-opened_at", "-id")
