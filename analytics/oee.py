"""Overall equipment effectiveness of stations, lines and shifts, from the stations' state
history, their results and the line's shift calendar.

For a station and a window:
- planned_s: the calendar's planned time (lines.calendar) in the window;
- run_s: time the station was `running` within planned time; down_s: time it was `down` or in
  `maintenance` within planned time (idle is neither: waiting for cells is the line's loss,
  not the station's);
- availability = run_s / planned_s; performance = Σ ideal cycle time of each result's recipe
  version / run_s; quality = good / total (good: verdict pass); OEE = A × P × Q;
- MTBF = run_s / failures and MTTR = down-state time / failures, a failure being a stop in the
  `down` state during planned time (maintenance is planned, not a failure);
- the downtime Pareto: down_s by the stops' reasons, an engineer's correction overriding what
  the station sent.
A figure whose denominator is zero is None, and so is performance while any result's recipe
version has no ideal cycle time (a partial sum would understate it). The window ends at the
latest now: time not yet lived is neither planned nor run.

Everything is read in a fixed number of queries whatever the number of stations (line pages
pin them); the figures of any part of the window (a shift) are then computed in memory.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from functools import cached_property
from typing import Any

from django.db.models import BigIntegerField, Count, DateTimeField, Func, Q, Value
from django.db.models.functions import Greatest, Trunc
from django.utils import timezone

from batches.models import ProcessRun
from lines.calendar import (
    CalendarSpec,
    Interval,
    overlap_seconds,
    planned_intervals,
    shift_occurrences,
    total_seconds,
)
from lines.models import DowntimeReason, Station, StationStateChange, StopReasonCorrection
from lines.performance import calendar_specs, ideal_cycle_times

RUNNING = Station.State.RUNNING
DOWN = Station.State.DOWN
STOPPED = (Station.State.DOWN, Station.State.MAINTENANCE)
UNASSIGNED = "unassigned"


@dataclass(frozen=True)
class Segment:
    """A stretch of one state: from a state change to the next (or the window's end)."""

    start: datetime
    end: datetime
    state: str
    reason: str  # the catalogue code or free text the stop counts under; "" for none
    change_id: int


@dataclass(frozen=True)
class Result:
    """The results of one station and recipe version finished in one minute of the window.

    Counted per minute in SQL rather than read one by one: a busy station's day is thousands of
    results but at most 1,440 minutes. Exact because every boundary a window is cut at lies on a
    whole minute (shift starts, ends and breaks) or is the window's own start, which `at` is
    never earlier than.
    """

    at: datetime
    version_id: int
    total: int
    good: int


@dataclass
class Figures:
    """Sums over a window; the ratios are derived, None where a denominator is zero."""

    planned_s: float = 0.0
    run_s: float = 0.0
    down_s: float = 0.0
    total: int = 0
    good: int = 0
    ideal_s: float = 0.0  # Σ ideal cycle time over the results
    without_ideal: int = 0  # results whose recipe version has no ideal cycle time
    failures: int = 0
    failure_s: float = 0.0  # time in `down` (not maintenance) within planned time
    downtime: dict[str, float] = field(default_factory=dict)  # reason -> seconds

    @property
    def availability(self) -> float | None:
        return self.run_s / self.planned_s if self.planned_s else None

    @property
    def performance(self) -> float | None:
        if not self.run_s or self.without_ideal:
            return None
        return self.ideal_s / self.run_s

    @property
    def quality(self) -> float | None:
        return self.good / self.total if self.total else None

    @property
    def oee(self) -> float | None:
        parts = (self.availability, self.performance, self.quality)
        return None if any(p is None for p in parts) else parts[0] * parts[1] * parts[2]

    @property
    def ideal_cycle_s(self) -> float | None:
        """The mean ideal cycle time of the window's results (one version: its own)."""
        if not self.total or self.without_ideal:
            return None
        return self.ideal_s / self.total

    @property
    def mtbf_s(self) -> float | None:
        return self.run_s / self.failures if self.failures else None

    @property
    def mttr_s(self) -> float | None:
        return self.failure_s / self.failures if self.failures else None

    def add(self, other: Figures) -> Figures:
        downtime = defaultdict(float, self.downtime)
        for reason, seconds in other.downtime.items():
            downtime[reason] += seconds
        return Figures(
            planned_s=self.planned_s + other.planned_s,
            run_s=self.run_s + other.run_s,
            down_s=self.down_s + other.down_s,
            total=self.total + other.total,
            good=self.good + other.good,
            ideal_s=self.ideal_s + other.ideal_s,
            without_ideal=self.without_ideal + other.without_ideal,
            failures=self.failures + other.failures,
            failure_s=self.failure_s + other.failure_s,
            downtime=dict(downtime),
        )


def compute(
    planned: Sequence[Interval],
    segments: Iterable[Segment],
    results: Iterable[Result],
    ideals: dict[int, float],
    since: datetime,
    until: datetime,
) -> Figures:
    """The figures of one station over [since, until), its planned intervals given (merged)."""
    figures = Figures(planned_s=total_seconds(planned))
    downtime: dict[str, float] = defaultdict(float)
    for segment in segments:
        start, end = max(segment.start, since), min(segment.end, until)
        if start >= end:
            continue
        seconds = overlap_seconds((start, end), planned)
        if segment.state == RUNNING:
            figures.run_s += seconds
        elif segment.state in STOPPED:
            figures.down_s += seconds
            if seconds:
                downtime[segment.reason or UNASSIGNED] += seconds
            if segment.state == DOWN and seconds:
                figures.failures += 1
                figures.failure_s += seconds
    for result in results:
        if since <= result.at < until:
            figures.total += result.total
            figures.good += result.good
            if result.version_id in ideals:
                figures.ideal_s += ideals[result.version_id] * result.total
            else:
                figures.without_ideal += result.total
    figures.downtime = dict(downtime)
    return figures


def pareto(figures: Figures, categories: dict[str, str]) -> list[dict[str, Any]]:
    """The downtime by reason, longest first, with the catalogue's category (None for a reason
    the catalogue does not hold)."""
    return [
        {"reason": reason, "category": categories.get(reason), "seconds": round(seconds, 3)}
        for reason, seconds in sorted(
            figures.downtime.items(), key=lambda item: (-item[1], item[0])
        )
    ]


def as_json(figures: Figures, categories: dict[str, str]) -> dict[str, Any]:
    """The contract's body (API.md, GET /api/v1/oee), plus MTBF, MTTR and the failure count."""
    return {
        "planned_s": round(figures.planned_s, 3),
        "run_s": round(figures.run_s, 3),
        "down_s": round(figures.down_s, 3),
        "availability": figures.availability,
        "performance": figures.performance,
        "quality": figures.quality,
        "oee": figures.oee,
        "ideal_cycle_s": figures.ideal_cycle_s,
        "total": figures.total,
        "good": figures.good,
        "downtime": pareto(figures, categories),
        "failures": figures.failures,
        "mtbf_s": figures.mtbf_s,
        "mttr_s": figures.mttr_s,
    }


# ---------------------------------------------------------------- reading the history


@dataclass
class StationHistory:
    station: Station
    calendar: CalendarSpec
    segments: list[Segment]
    results: list[Result]


@dataclass
class Window:
    """Stations' histories over one window, read together; figures of any part of it."""

    since: datetime
    until: datetime
    histories: dict[int, StationHistory]
    ideals: dict[int, float]
    # False: the results were summed over the whole window (read_window(per_minute=False)), so
    # only the whole window's figures can be asked for.
    per_minute: bool = True

    @cached_property
    def categories(self) -> dict[str, str]:
        """The catalogue's category of each reason code (read on first use: the cards need none)."""
        return dict(DowntimeReason.objects.values_list("code", "category"))

    def figures(
        self, station: Station, since: datetime | None = None, until: datetime | None = None
    ) -> Figures:
        since, until = max(since or self.since, self.since), min(until or self.until, self.until)
        if not self.per_minute and (since, until) != (self.since, self.until):
            raise ValueError("This window's results are summed over the whole window only.")
        history = self.histories[station.pk]
        if since >= until:
            return Figures()
        planned = planned_intervals(history.calendar, since, until)
        return compute(planned, history.segments, history.results, self.ideals, since, until)

    def line_figures(self, stations: Iterable[Station]) -> Figures:
        total = Figures()
        for station in stations:
            total = total.add(self.figures(station))
        return total

    def shifts(self, stations: Sequence[Station]) -> list[tuple[Any, Figures]]:
        """Each shift worked in the window with the stations' figures over it (the stations of
        one line share its calendar)."""
        if not stations:
            return []
        calendar = self.histories[stations[0].pk].calendar
        rows = []
        for occurrence in shift_occurrences(calendar, self.since, self.until):
            total = Figures()
            for station in stations:
                total = total.add(self.figures(station, occurrence.start, occurrence.end))
            rows.append((occurrence, total))
        return rows

    def timeline(self, station: Station) -> list[Segment]:
        """The station's segments clipped to the window, for the Gantt chart."""
        return [
            Segment(
                max(s.start, self.since), min(s.end, self.until), s.state, s.reason, s.change_id
            )
            for s in self.histories[station.pk].segments
            if s.start < self.until and s.end > self.since
        ]


class EpochSeconds(Func):
    template = "EXTRACT(EPOCH FROM %(expressions)s)::bigint"
    output_field = BigIntegerField()


def read_window(
    stations: Sequence[Station],
    since: datetime,
    until: datetime,
    *,
    now: datetime | None = None,
    specs: dict[int, CalendarSpec] | None = None,
    per_minute: bool = True,
) -> Window:
    """The stations' state histories and results over [since, until), until clipped to now.

    per_minute=False sums the results per station and recipe version over the whole window
    instead of per minute: a few rows rather than thousands for a day, for a caller that asks
    only the whole window's figures (the line view's cards)."""
    until = min(until, now or timezone.now())
    since = min(since, until)
    ids = [station.pk for station in stations]
    specs = specs or calendar_specs({station.line_id for station in stations})
    # The state in force when the window opens (one row per station), then the changes in it.
    before = (
        StationStateChange.objects.filter(station_id__in=ids, occurred_at__lt=since)
        .order_by("station_id", "-occurred_at", "-id")
        .distinct("station_id")
        .select_related("downtime_reason")
    )
    within = (
        StationStateChange.objects.filter(
            station_id__in=ids, occurred_at__gte=since, occurred_at__lt=until
        )
        .order_by("station_id", "occurred_at", "id")
        .select_related("downtime_reason")
    )
    changes = [*before, *within] if ids else []
    corrected = _corrected_reasons([c.pk for c in changes if c.state in STOPPED])
    by_station: dict[int, list[StationStateChange]] = defaultdict(list)
    for change in sorted(changes, key=lambda c: (c.occurred_at, c.pk)):
        by_station[change.station_id].append(change)
    results: dict[int, list[Result]] = defaultdict(list)
    version_ids = set()
    # As seconds since the epoch: a day's thousands of minutes are read as integers, not parsed
    # from timestamp text one by one. Summed over the whole window, there is no minute (every
    # result is then put at the window's start, below).
    minute = (
        EpochSeconds(
            Greatest(
                Trunc("finished_at", "minute", tzinfo=UTC),
                Value(since, output_field=DateTimeField()),
            )
        )
        if per_minute
        else Value(None, output_field=BigIntegerField())
    )
    rows = (
        ProcessRun.objects.filter(station_id__in=ids, finished_at__gte=since, finished_at__lt=until)
        .annotate(minute=minute)
        .values_list("station_id", "minute", "recipe_version_id")
        .annotate(total=Count("id"), good=Count("id", filter=Q(verdict=ProcessRun.Verdict.PASS)))
        .order_by()
    )
    for station_id, minute, version_id, total, good in rows if ids else []:
        at = datetime.fromtimestamp(minute, UTC) if per_minute else since
        results[station_id].append(Result(at, version_id, total, good))
        version_ids.add(version_id)
    histories = {}
    for station in stations:
        own = by_station[station.pk]
        segments = []
        for i, change in enumerate(own):
            end = own[i + 1].occurred_at if i + 1 < len(own) else until
            reason = corrected.get(change.pk) or (
                change.downtime_reason.code if change.downtime_reason_id else change.reason
            )
            segments.append(Segment(change.occurred_at, end, change.state, reason, change.pk))
        histories[station.pk] = StationHistory(
            station, specs[station.line_id], segments, results[station.pk]
        )
    return Window(
        since=since,
        until=until,
        histories=histories,
        ideals=ideal_cycle_times(version_ids) if version_ids else {},
        per_minute=per_minute,
    )


def _corrected_reasons(change_ids: Sequence[int]) -> dict[int, str]:
    """The latest correction's reason code of each state change that has one."""
    if not change_ids:
        return {}
    latest = (
        StopReasonCorrection.objects.filter(state_change_id__in=change_ids)
        .order_by("state_change_id", "-corrected_at", "-id")
        .distinct("state_change_id")
        .values_list("state_change_id", "reason__code")
    )
    return dict(latest)


def today_oee(stations: Sequence[Station], *, now: datetime | None = None) -> None:
    """Give each station its figures of today so far (`oee_today`), for the line view's cards;
    today starts at midnight in the zone of each line's calendar."""
    if not stations:
        return
    now = now or timezone.now()
    specs = calendar_specs({station.line_id for station in stations})
    starts = {
        line_id: datetime.combine(now.astimezone(spec.zone).date(), time(0), tzinfo=spec.zone)
        for line_id, spec in specs.items()
    }
    # A window per line from its own midnight, its results summed over the whole of it: the
    # cards need no part of the day, and grouping a busy day per minute (thousands of rows to
    # read and sum in Python) took about twice as long. (One line on the line view: one window.)
    by_line: dict[int, list[Station]] = defaultdict(list)
    for station in stations:
        by_line[station.line_id].append(station)
    for line_id, own in by_line.items():
        window = read_window(own, starts[line_id], now, now=now, specs=specs, per_minute=False)
        for station in own:
            station.oee_today = window.figures(station)
