"""Excursions judged from a zone's readings by the readings' own time, whenever they arrive.

For each sensor, quantity and bound (dew point max, temperature min and max, H2S max) touched by
new readings, the span that a new reading can change runs from the last reading within the limit
before the new ones to the first reading within it after them: no run of readings beyond the
limit crosses a reading within it. The runs in that span are computed again from the stored
readings and written over the excursions recorded there, so a late reading that bridges a gap,
extends a run or splits one gives the same excursions as had every reading come in time order.
The caller holds the zone's row lock, so two requests for one zone judge one after the other.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from django.db import OperationalError, connection, transaction
from django.utils import timezone

from batches.models import Hold
from environment.models import ExcursionHold
from lines.models import ZONE_QUANTITIES, Excursion, Zone
from quality.rules import dry_room_excursion

logger = logging.getLogger(__name__)

# How far back a run of readings beyond a limit is followed: a sensor stuck beyond its limit for
# longer is one excursion per this much of it, rather than a scan of its whole history.
LONGEST_SPAN = timedelta(days=7)


@dataclass(frozen=True)
class Run:
    """A maximal run of one sensor's readings beyond a limit."""

    started_at: datetime
    last_beyond_at: datetime
    ended_at: datetime | None
    peak: float


def bounds(zone: Zone) -> list[tuple[str, str, float]]:
    """The zone's limits as (quantity, "min"|"max", value), in a fixed order."""
    return [
        (quantity, bound, float(zone.limits[quantity][bound]))
        for quantity in ZONE_QUANTITIES
        if quantity in zone.limits
        for bound in ("min", "max")
        if bound in zone.limits[quantity]
    ]


def beyond(value: float, bound: str, limit: float) -> bool:
    return value > limit if bound == "max" else value < limit


def runs_of(readings: Iterable[tuple[datetime, float]], bound: str, limit: float) -> list[Run]:
    """The runs beyond the limit in time-ordered readings (a run still beyond at the last reading
    is open: no end)."""
    runs, start, last, peak = [], None, None, None
    for at, value in readings:
        if beyond(value, bound, limit):
            if start is None:
                start, peak = at, value
            last = at
            peak = max(peak, value) if bound == "max" else min(peak, value)
        elif start is not None:
            runs.append(Run(start, last, at, peak))
            start = None
    if start is not None:
        runs.append(Run(start, last, None, peak))
    return runs


def _within_sql(quantity: str, bound: str) -> str:
    # quantity and bound come from ZONE_QUANTITIES and bounds(), never from a request.
    return f"{quantity} {'<=' if bound == 'max' else '>='} %s"


def _span(zone: Zone, sensor: str, quantity: str, bound: str, limit: float, times: list[datetime]):
    """The readings (at, value) a new reading in `times` can change the runs of, from the last
    reading within the limit before the earliest to the first within it after the latest."""
    earliest, latest = min(times), max(times)
    key = f"zone_id = %s AND sensor = %s AND {quantity} IS NOT NULL"
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT max(at) FROM environment_reading WHERE {key} AND at < %s AND at >= %s "
            f"AND {_within_sql(quantity, bound)}",
            [zone.pk, sensor, earliest, earliest - LONGEST_SPAN, limit],
        )
        start = cursor.fetchone()[0] or earliest - LONGEST_SPAN
        cursor.execute(
            f"SELECT min(at) FROM environment_reading WHERE {key} AND at > %s "
            f"AND {_within_sql(quantity, bound)}",
            [zone.pk, sensor, latest, limit],
        )
        end = cursor.fetchone()[0]
        cursor.execute(
            f"SELECT at, {quantity} FROM environment_reading WHERE {key} AND at >= %s"
            + (" AND at <= %s" if end else "")
            + " ORDER BY at",
            [zone.pk, sensor, start, *([end] if end else [])],
        )
        return start, end, cursor.fetchall()


def judge(
    zone: Zone, new: Iterable[tuple[str, datetime, dict[str, float | None]]]
) -> list[Excursion]:
    """Judge the zone again where new readings (sensor, at, values) fall; returns the excursions
    that count and changed (each has held what it touched, when the rule is in force)."""
    touched: dict[tuple[str, str, str, float], list[datetime]] = {}
    limits = bounds(zone)
    for sensor, at, values in new:
        for quantity, bound, limit in limits:
            if values.get(quantity) is not None:
                touched.setdefault((sensor, quantity, bound, limit), []).append(at)
    changed: list[Excursion] = []
    counted: list[Excursion] = []
    for (sensor, quantity, bound, limit), times in sorted(touched.items()):
        span_changed, span_counted = _judge_span(zone, sensor, quantity, bound, limit, times)
        changed += span_changed
        counted += span_counted
    if changed and (version := dry_room_excursion.in_force()):
        for excursion in changed:
            link(excursion, dry_room_excursion.hold_exposed(version, excursion))
        if counted:
            transaction.on_commit(partial(gather_again, [e.pk for e in counted]))
    return changed


def link(excursion: Excursion, holds: list[Hold]) -> None:
    ExcursionHold.objects.bulk_create(
        [ExcursionHold(excursion=excursion, hold=hold) for hold in holds], ignore_conflicts=True
    )


def gather_again(excursion_ids: list[int], attempts: int = 3) -> None:
    """Once the count is committed, hold what steps applied meanwhile touched (quality's rule
    explains the race). A deadlock with a worker (which then retries its own results) is tried
    again; giving up leaves the excursion's holds as they were."""
    for excursion_id in excursion_ids:
        for attempt in range(1, attempts + 1):
            try:
                with transaction.atomic():
                    excursion = Excursion.objects.get(pk=excursion_id)
                    link(excursion, dry_room_excursion.gather_again(excursion_id))
                break
            except OperationalError:
                if attempt == attempts:
                    logger.exception("Excursion %s: gathering again failed", excursion_id)


def _judge_span(
    zone: Zone, sensor: str, quantity: str, bound: str, limit: float, times: list[datetime]
) -> tuple[list[Excursion], list[Excursion]]:
    """The span's excursions judged again: those that count and gained time (their holds must
    gather again), and of them those that count from now on."""
    start, end, readings = _span(zone, sensor, quantity, bound, limit, times)
    runs = runs_of(readings, bound, limit)
    recorded = Excursion.objects.filter(
        zone=zone, sensor=sensor, quantity=quantity, bound=bound, started_at__gte=start
    ).order_by("started_at", "pk")
    if end is not None:
        recorded = recorded.filter(started_at__lte=end)
    left = list(recorded)
    now = timezone.now()
    tolerated = timedelta(seconds=zone.tolerated_s)
    changed, counted = [], []
    for run in runs:
        overlapping = [e for e in left if _overlaps(e, run)]
        # An excursion that counted keeps its number (its hold is named after it).
        excursion = next((e for e in overlapping if e.counted_at), None) or next(
            iter(overlapping), None
        )
        if excursion is None:
            excursion = Excursion(zone=zone, sensor=sensor, quantity=quantity, bound=bound)
        else:
            left.remove(excursion)
        started, ended = excursion.started_at, excursion.ended_at
        excursion.limit = limit
        excursion.started_at, excursion.last_beyond_at = run.started_at, run.last_beyond_at
        excursion.ended_at, excursion.peak = run.ended_at, run.peak
        counts = (run.ended_at or run.last_beyond_at) - run.started_at > tolerated
        newly_counted = counts and excursion.counted_at is None
        if newly_counted:
            excursion.counted_at = now
        excursion.save()
        excursion.zone = zone
        # Steps applied while it counted and went on joined it themselves; those of a span it
        # gained only now (an earlier start, a later end) were applied without it.
        widened = started is not None and (
            run.started_at < started
            or (ended is not None and (run.ended_at is None or run.ended_at > ended))
        )
        if excursion.counted_at and (newly_counted or widened):
            changed.append(excursion)
            if newly_counted:
                counted.append(excursion)
    # Runs a late reading dissolved: forgotten unless they counted (then they held something,
    # and the holds stay for quality to disposition).
    Excursion.objects.filter(pk__in=[e.pk for e in left if e.counted_at is None]).delete()
    return changed, counted


def _overlaps(excursion: Excursion, run: Run) -> bool:
    ends = excursion.ended_at or excursion.last_beyond_at
    run_ends = run.ended_at or run.last_beyond_at
    return excursion.started_at <= run_ends and run.started_at <= ends
