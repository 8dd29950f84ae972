"""The dashboards' figures: each line's day and week, and the line as a flow of steps."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connection
from django.db.models import Count, OuterRef, Q, Subquery
from django.utils import timezone

from batches.models import Cell, CellActivity, Hold, ProcessRun
from lines.models import Line, Route, RouteStep, Station
from lines.selectors import KIND_ORDER
from stations.models import InboxEntry

STOPPED = (Station.State.DOWN, Station.State.MAINTENANCE)


# ---------------------------------------------------------------- time windows


def day_start(now: datetime | None = None) -> datetime:
    """Local midnight today (the plant's time zone, settings.TIME_ZONE)."""
    local = timezone.localtime(now)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def week_start(now: datetime | None = None) -> datetime:
    """Local midnight of this week's Monday."""
    today = day_start(now)
    return today - timedelta(days=today.weekday())


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
    """Every line's figures for today and this week; five queries for all lines together.

    started: cells that ran their route's first step; passed: cells that completed their route;
    failed: cells with a failed run; first-pass yield over the cells worked on. Counted from each
    cell's latest times (CellActivity): as of a past `now`, a cell worked on again since then
    is left out of the counts it was in.
    """
    today, week = day_start(now), week_start(now)
    lines = list(Line.objects.annotate(station_count=Count("stations")).order_by("code"))
    summaries = {
        line.pk: LineSummary(line, WindowFigures(), WindowFigures(), stations=line.station_count)
        for line in lines
    }

    def within(column: str, start: datetime) -> Q:
        window = Q(**{f"{column}__gte": start})
        if now is not None:  # as of that moment: nothing after it
            window &= Q(**{f"{column}__lte": now})
        return window

    counts = {
        f"{figure}_{name}": Count("pk", filter=within(column, start))
        for figure, column in (
            ("started", "last_started_at"),
            ("failed", "last_failed_at"),
            ("worked", "last_run_at"),
        )
        for name, start in (("day", today), ("week", week))
    }
    activity = (
        CellActivity.objects.filter(last_run_at__gte=week)
        .order_by()
        .values("line_id")
        .annotate(**counts)
    )
    for row in activity:
        summary = summaries[row["line_id"]]
        for window, name in ((summary.today, "day"), (summary.week, "week")):
            window.started = row[f"started_{name}"]
            window.failed = row[f"failed_{name}"]
            window.worked = row[f"worked_{name}"]
    completed = Cell.objects.filter(completed_at__gte=week, status=Cell.Status.COMPLETED)
    if now is not None:
        completed = completed.filter(completed_at__lte=now)
    completed = completed.values("batch__line_id").annotate(
        day=Count("id", filter=Q(completed_at__gte=today)), week=Count("id")
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
    and today's pass/fail per station. Six queries, whatever the number of cells."""
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
        # By the stations' ids, not a join through the station: each month's partition is then
        # read through its two small partial indexes (pending; rejected, by time) alone. Every
        # month, not the recent ones only: a row received long ago may still be pending (or be
        # rejected today, after being sent again), and must be counted.
        for row in InboxEntry.objects.filter(station_id__in=[s.pk for s in stations])
        .filter(Q(status=pending) | Q(status=rejected, processed_at__gte=day_start(now)))
        .values("station_id")
        .annotate(
            pending=Count("id", filter=Q(status=pending)),
            rejected=Count("id", filter=Q(status=rejected)),
        )
    }
    # By the stations' ids, not a join through the station: each station's results of the day
    # are then read from batches_run_station_time_idx alone.
    runs = ProcessRun.objects.filter(
        station_id__in=[s.pk for s in stations], finished_at__gte=day_start(now)
    )
    if now is not None:  # the counts as of that moment: nothing after it
        runs = runs.filter(finished_at__lte=now)
    today = {
        row["station_id"]: row
        # Not by cell (the default): it would join cells and batches into the count.
        for row in runs.order_by()
        .values("station_id")
        .annotate(
            passed=Count("id", filter=Q(verdict=ProcessRun.Verdict.PASS)),
            failed=Count("id", filter=Q(verdict=ProcessRun.Verdict.FAIL)),
        )
    }
    waiting = _waiting_per_kind(line)
    in_process = Cell.objects.filter(batch__line=line, next_step__isnull=False).order_by()
    held = dict(
        in_process.on_hold()
        .values("next_step__station_kind")
        .annotate(n=Count("*"))
        .values_list("next_step__station_kind", "n")
    )
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
        step.held = held.get(kind, 0)
        step.waiting = waiting.get(kind, 0) - step.held
    return sorted(steps.values(), key=lambda s: KIND_ORDER.get(s.kind, 99))


def _waiting_per_kind(line: Line) -> dict[str, int]:
    """The line's cells on their route per kind of their next step.

    Counted per next step from batches_cell_wip_idx alone, for the line's route steps only (a
    batch's route is of its line), so another line's work in progress is never read; only the
    few counts are joined to their step: joined cell by cell (as the ORM writes it; PostgreSQL
    does not count before a join by itself) it cost four times as much."""
    cell, step, route = Cell._meta.db_table, RouteStep._meta.db_table, Route._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT step.station_kind, sum(wip.n)::int
            FROM (
                SELECT next_step_id, count(*) AS n FROM {cell}
                WHERE next_step_id = ANY(ARRAY(
                    SELECT s.id FROM {step} s JOIN {route} r ON r.id = s.route_id
                    WHERE r.line_id = %s
                ))
                GROUP BY next_step_id
            ) wip
            JOIN {step} step ON step.id = wip.next_step_id
            GROUP BY step.station_kind
            """,
            [line.pk],
        )
        return dict(cursor.fetchall())
