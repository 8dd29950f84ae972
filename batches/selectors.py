"""Reads that span relations, for the dashboard and the engineers' API.

Each selector runs a fixed number of queries, whatever the number of cells, runs or holds it
covers: counts are aggregated in the database and related rows are joined or prefetched.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, Exists, Min, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.utils import timezone

from audit.models import Event
from batches.models import (
    Batch,
    Cell,
    CellDesign,
    Consumption,
    Curve,
    Hold,
    HoldRule,
    InboxEntry,
    MaterialLot,
    Measurement,
    PendingReason,
    ProcessRun,
)
from batches.rules import rule_thresholds
from lines.models import Line, Recipe, RecipeVersion, RouteStep, Station, StationKind

ACTIVE_BATCH = (Batch.Status.PLANNED, Batch.Status.IN_PROGRESS)
STOPPED = (Station.State.DOWN, Station.State.MAINTENANCE)
# A chart of more points than a screen has pixels only costs transfer and drawing time.
CURVE_POINTS_SHOWN = 1500
KIND_ORDER = {kind: i for i, kind in enumerate(StationKind.values)}


# ---------------------------------------------------------------- time windows


def day_start(now: datetime | None = None) -> datetime:
    """Local midnight today (the plant's time zone, settings.TIME_ZONE)."""
    local = timezone.localtime(now)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def week_start(now: datetime | None = None) -> datetime:
    """Local midnight of this week's Monday."""
    today = day_start(now)
    return today - timedelta(days=today.weekday())


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


# ---------------------------------------------------------------- home


@dataclass
class WindowFigures:
    started: int = 0
    passed: int = 0
    failed: int = 0
    worked: int = 0

    @property
    def first_pass_yield(self) -> float | None:
        """Share of the cells worked on in the window that did every step without a failure."""
        if not self.worked:
            return None
        return (self.worked - self.failed) / self.worked


@dataclass
class LineSummary:
    line: Line
    today: WindowFigures
    week: WindowFigures
    open_holds: int = 0
    stations_down: int = 0
    stations: int = 0


def line_summaries(now: datetime | None = None) -> list[LineSummary]:
    """Every line's figures for today and this week; four queries for all lines together.

    started: cells that ran their route's first step; passed: cells that completed their route;
    failed: cells with a failed run; first-pass yield over the cells worked on.
    """
    today, week = day_start(now), week_start(now)
    since = min(today, week)
    lines = list(Line.objects.annotate(station_count=Count("stations")).order_by("code"))
    summaries = {
        line.pk: LineSummary(line, WindowFigures(), WindowFigures(), stations=line.station_count)
        for line in lines
    }
    in_day = Q(finished_at__gte=today)
    first_step = Q(step__position=1)
    failed = Q(verdict=ProcessRun.Verdict.FAIL)
    runs = (
        ProcessRun.objects.filter(finished_at__gte=since)
        .values("station__line_id")
        .annotate(
            started_day=Count("cell", distinct=True, filter=first_step & in_day),
            started_week=Count("cell", distinct=True, filter=first_step),
            failed_day=Count("cell", distinct=True, filter=failed & in_day),
            failed_week=Count("cell", distinct=True, filter=failed),
            worked_day=Count("cell", distinct=True, filter=in_day),
            worked_week=Count("cell", distinct=True),
        )
    )
    for row in runs:
        summary = summaries[row["station__line_id"]]
        for window, name in ((summary.today, "day"), (summary.week, "week")):
            window.started = row[f"started_{name}"]
            window.failed = row[f"failed_{name}"]
            window.worked = row[f"worked_{name}"]
    completed = (
        Cell.objects.filter(completed_at__gte=since, status=Cell.Status.COMPLETED)
        .values("batch__line_id")
        .annotate(day=Count("id", filter=Q(completed_at__gte=today)), week=Count("id"))
    )
    for row in completed:
        summaries[row["batch__line_id"]].today.passed = row["day"]
        summaries[row["batch__line_id"]].week.passed = row["week"]
    for row in (
        Hold.objects.filter(status=Hold.Status.OPEN)
        .values("cells__batch__line_id")
        .annotate(n=Count("id", distinct=True))
    ):
        if row["cells__batch__line_id"] in summaries:
            summaries[row["cells__batch__line_id"]].open_holds = row["n"]
    for row in Station.objects.filter(state__in=STOPPED).values("line_id").annotate(n=Count("id")):
        summaries[row["line_id"]].stations_down = row["n"]
    return [summaries[line.pk] for line in lines]


# ---------------------------------------------------------------- line view


@dataclass
class StationStatus:
    station: Station
    pending_results: int = 0
    rejected_today: int = 0
    last_run: ProcessRun | None = None
    passed_today: int = 0
    failed_today: int = 0


@dataclass
class StepWip:
    """One station kind on the line's flow with the cells waiting for it."""

    kind: str
    label: str
    stations: list[StationStatus] = field(default_factory=list)
    waiting: int = 0
    held: int = 0


def wip_by_station(line: Line, now: datetime | None = None) -> list[StepWip]:
    """The line as a flow of steps in route order, each with its stations' state, the cells
    waiting for it (and how many of those are held), results being processed, the last result
    and today's pass/fail per station. Five queries, whatever the number of cells."""
    last_run = ProcessRun.objects.filter(station=OuterRef("pk")).order_by("-finished_at", "-id")
    stations = list(
        line.stations.annotate(last_run_id=Subquery(last_run.values("id")[:1])).order_by("code")
    )
    last_runs = ProcessRun.objects.select_related("cell", "step").in_bulk(
        [s.last_run_id for s in stations if s.last_run_id]
    )
    pending, rejected = InboxEntry.Status.PENDING, InboxEntry.Status.REJECTED
    inbox = {
        row["station_id"]: row
        for row in InboxEntry.objects.filter(station__line=line)
        .filter(Q(status=pending) | Q(status=rejected, processed_at__gte=day_start(now)))
        .values("station_id")
        .annotate(
            pending=Count("id", filter=Q(status=pending)),
            rejected=Count("id", filter=Q(status=rejected)),
        )
    }
    today = {
        row["station_id"]: row
        for row in ProcessRun.objects.filter(station__line=line, finished_at__gte=day_start(now))
        .values("station_id")
        .annotate(
            passed=Count("id", filter=Q(verdict=ProcessRun.Verdict.PASS)),
            failed=Count("id", filter=Q(verdict=ProcessRun.Verdict.FAIL)),
        )
    }
    waiting = {
        row["next_step__station_kind"]: row
        for row in Cell.objects.filter(batch__line=line, next_step__isnull=False)
        .with_hold_state()
        .values("next_step__station_kind")
        .annotate(total=Count("id"), held_count=Count("id", filter=Q(held=True)))
    }
    steps: dict[str, StepWip] = {}
    for station in stations:
        step = steps.setdefault(
            station.kind, StepWip(kind=station.kind, label=station.get_kind_display())
        )
        counts, results = today.get(station.pk, {}), inbox.get(station.pk, {})
        step.stations.append(
            StationStatus(
                station=station,
                pending_results=results.get("pending", 0),
                rejected_today=results.get("rejected", 0),
                last_run=last_runs.get(station.last_run_id),
                passed_today=counts.get("passed", 0),
                failed_today=counts.get("failed", 0),
            )
        )
    for kind, step in steps.items():
        row = waiting.get(kind, {})
        step.waiting = row.get("total", 0) - row.get("held_count", 0)
        step.held = row.get("held_count", 0)
    return sorted(steps.values(), key=lambda s: KIND_ORDER.get(s.kind, 99))


# ---------------------------------------------------------------- hold rules


@dataclass
class HoldRuleHistory:
    code: str
    label: str
    thresholds: list[str]  # the names its check reads
    versions: list[HoldRule]  # newest first, each with `holds_opened`

    @property
    def in_force(self) -> HoldRule | None:
        return next((v for v in self.versions if v.active), None)


def hold_rule_histories() -> list[HoldRuleHistory]:
    """Every rule the code knows, with its versions and the holds each opened. One query."""
    versions: dict[str, list[HoldRule]] = defaultdict(list)
    for version in HoldRule.objects.annotate(holds_opened=Count("holds")).order_by(
        "code", "-version"
    ):
        versions[version.code].append(version)
    return [
        HoldRuleHistory(code, label, list(rule_thresholds(code)), versions[code])
        for code, label in HoldRule.Code.choices
    ]


# ---------------------------------------------------------------- station results not applied

# The two lists of station results the record does not (yet) hold.
UNAPPLIED = {"rejected": "Rejected", "pending": "Waiting"}
# The reasons of rejected results are counted over this many days (the list itself goes back
# to the first one).
REJECTED_REASONS_DAYS = 7


def unapplied_results(
    *, state: str = "rejected", line: str = "", station: str = "", reason: str = ""
) -> QuerySet[InboxEntry]:
    """Station results the workers rejected (newest first), or those still pending (oldest
    first): waiting for an earlier step's result, retrying after a database error, or queued.

    Without their payloads (a pressing result carries its curves); `cell_exists` says whether the
    serial names a cell (an unknown one is a reason to reject)."""
    entries = (
        _unapplied(state, line=line, station=station, reason=reason)
        .select_related("station__line")
        .defer("payload", "violations")
        .annotate(cell_exists=Exists(Cell.objects.filter(serial=OuterRef("cell_serial"))))
    )
    if state == "pending":
        return entries.order_by("received_at", "id")
    return entries.order_by("-processed_at", "-id")


def unapplied_reasons(
    *, state: str = "rejected", line: str = "", station: str = ""
) -> list[tuple[str, int]]:
    """(reason code, results) of the list, most frequent first; rejected ones of the last
    REJECTED_REASONS_DAYS days only (the partial index's range, however long the history)."""
    entries = _unapplied(state, line=line, station=station)
    if state != "pending":
        since = timezone.now() - timedelta(days=REJECTED_REASONS_DAYS)
        entries = entries.filter(processed_at__gte=since)
    counts = (
        entries.values_list("reason_code").annotate(n=Count("id")).order_by("-n", "reason_code")
    )
    return list(counts)


@dataclass(frozen=True)
class IngestionBacklog:
    """Accepted results not applied yet, leaving out those waiting for an earlier step's result
    (they may rightly wait for hours). The workers apply a result within a second or so; one
    older than settings.INGEST_BEHIND_AFTER_SECONDS means they, or the broker, have stopped, and
    every figure on the dashboard is behind."""

    pending: int
    oldest: datetime | None

    def oldest_age_s(self) -> float | None:
        if self.oldest is None:
            return None
        return (timezone.now() - self.oldest).total_seconds()

    @property
    def behind(self) -> bool:
        age = self.oldest_age_s()
        return age is not None and age > settings.INGEST_BEHIND_AFTER_SECONDS


def ingestion_backlog() -> IngestionBacklog:
    row = (
        InboxEntry.objects.filter(status=InboxEntry.Status.PENDING)
        .exclude(reason_code=PendingReason.WAITING)
        .aggregate(pending=Count("id"), oldest=Min("received_at"))
    )
    return IngestionBacklog(pending=row["pending"], oldest=row["oldest"])


def _unapplied(state: str, *, line: str, station: str, reason: str = "") -> QuerySet[InboxEntry]:
    status = InboxEntry.Status.PENDING if state == "pending" else InboxEntry.Status.REJECTED
    entries = InboxEntry.objects.filter(status=status)
    if line:
        entries = entries.filter(station__line__code=line)
    if station:
        entries = entries.filter(station__code=station)
    if reason:
        entries = entries.filter(reason_code=reason)
    return entries


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


# ---------------------------------------------------------------- recipes


@dataclass
class ParameterChange:
    name: str
    change: str  # added, removed, changed
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    fields: list[str]


@dataclass
class VersionHistory:
    version: RecipeVersion
    changes: list[ParameterChange]


LIMIT_FIELDS = ("unit", "target", "min", "max", "required")


def _limits(parameter: Any) -> dict[str, Any]:
    return {name: getattr(parameter, name) for name in LIMIT_FIELDS}


def parameter_diff(before: RecipeVersion | None, after: RecipeVersion) -> list[ParameterChange]:
    """What changed in the parameters from one version to the next (added, removed, changed)."""
    old = {p.name: _limits(p) for p in before.parameters.all()} if before else {}
    new = {p.name: _limits(p) for p in after.parameters.all()}
    changes = []
    for name in sorted(old.keys() | new.keys()):
        if name not in old:
            changes.append(ParameterChange(name, "added", None, new[name], list(LIMIT_FIELDS)))
        elif name not in new:
            changes.append(ParameterChange(name, "removed", old[name], None, []))
        else:
            fields = [f for f in LIMIT_FIELDS if old[name][f] != new[name][f]]
            if fields:
                changes.append(ParameterChange(name, "changed", old[name], new[name], fields))
    return changes


def recipe_histories(*, line: str = "") -> list[tuple[Recipe, list[VersionHistory]]]:
    """Every recipe with its versions, newest first, and what each changed from the one before."""
    versions = RecipeVersion.objects.select_related("released_by").prefetch_related("parameters")
    recipes = Recipe.objects.select_related("line").prefetch_related(
        Prefetch("versions", queryset=versions.order_by("version"))
    )
    if line:
        recipes = recipes.filter(line__code=line)
    result = []
    for recipe in recipes.order_by("line__code", "station_kind"):
        ordered = list(recipe.versions.all())
        history = [
            VersionHistory(version, parameter_diff(ordered[i - 1] if i else None, version))
            for i, version in enumerate(ordered)
        ]
        result.append((recipe, list(reversed(history))))
    result.sort(key=lambda item: (item[0].line.code, KIND_ORDER.get(item[0].station_kind, 99)))
    return result


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
    from django.urls import reverse

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
