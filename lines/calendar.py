"""Planned production time: a line's shift calendar and the intervals it plans in a window.

A line without a ShiftCalendar row works to DEFAULT_CALENDAR: the default is code, not rows,
so a line created by any path (the admin, seed_demo, a test factory, a flushed test database)
has it at once, and nothing needs keeping in step with it. An engineer who wants another
calendar writes the line's own (the admin starts it from the default, see
`write_default_calendar`); extra days off (DayOff) apply to either.

`planned_intervals` is pure (no database): the calendar as a CalendarSpec, a window in, the
planned intervals out, in UTC-aware datetimes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

Interval = tuple[datetime, datetime]


@dataclass(frozen=True)
class ShiftSpec:
    name: str
    weekday: int  # 0 Monday … 6 Sunday: the day the shift starts on
    start: time
    end: time  # at or before start: the next day
    breaks: tuple[tuple[time, time], ...] = ()


@dataclass(frozen=True)
class CalendarSpec:
    time_zone: str = "Asia/Tokyo"
    shifts: tuple[ShiftSpec, ...] = ()
    public_holidays: bool = True
    year_end_off: bool = True
    days_off: frozenset[date] = field(default_factory=frozenset)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)


# The contract's default (API.md): Monday to Friday 08:00-17:00 Asia/Tokyo, a break 12:00-13:00,
# Japanese public holidays and 29 Dec - 3 Jan off.
DEFAULT_SHIFTS = tuple(
    ShiftSpec("day", weekday, time(8), time(17), ((time(12), time(13)),)) for weekday in range(5)
)
DEFAULT_CALENDAR = CalendarSpec(time_zone="Asia/Tokyo", shifts=DEFAULT_SHIFTS)


@lru_cache(maxsize=64)
def _japanese_holidays(year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays("JP", years=year))


def is_day_off(spec: CalendarSpec, day: date) -> bool:
    """A day no shift starts on: a public holiday, the year-end break, or a day off added."""
    if day in spec.days_off:
        return True
    if spec.year_end_off and (
        (day.month == 12 and day.day >= 29) or (day.month == 1 and day.day <= 3)
    ):
        return True
    return spec.public_holidays and day in _japanese_holidays(day.year)


@dataclass(frozen=True)
class ShiftOccurrence:
    """One shift worked on one day: its span and its planned intervals (the span less breaks)."""

    name: str
    day: date
    start: datetime
    end: datetime
    planned: tuple[Interval, ...]


def _at(day: date, moment: time, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, moment, tzinfo=zone)


def _occurrence(shift: ShiftSpec, day: date, zone: ZoneInfo) -> ShiftOccurrence:
    start = _at(day, shift.start, zone)
    end = _at(day + timedelta(days=1) if shift.end <= shift.start else day, shift.end, zone)
    cuts = []
    for break_start, break_end in shift.breaks:
        # A break is where it falls inside the shift: after midnight in a night shift, the next day.
        b_day = day if break_start >= shift.start else day + timedelta(days=1)
        b_start = _at(b_day, break_start, zone)
        b_end = _at(
            b_day + timedelta(days=1) if break_end <= break_start else b_day, break_end, zone
        )
        cuts.append((max(b_start, start), min(b_end, end)))
    planned = subtract([(start, end)], cuts)
    return ShiftOccurrence(shift.name, day, start, end, tuple(planned))


def shift_occurrences(
    spec: CalendarSpec, since: datetime, until: datetime
) -> list[ShiftOccurrence]:
    """The shifts worked that overlap [since, until), in time order (unclipped)."""
    zone = spec.zone
    # A night shift that started the day before the window may reach into it.
    first = since.astimezone(zone).date() - timedelta(days=1)
    last = until.astimezone(zone).date()
    found = []
    day = first
    while day <= last:
        if not is_day_off(spec, day):
            for shift in spec.shifts:
                if shift.weekday == day.weekday():
                    occurrence = _occurrence(shift, day, zone)
                    if occurrence.start < until and occurrence.end > since:
                        found.append(occurrence)
        day += timedelta(days=1)
    found.sort(key=lambda o: o.start)
    return found


def planned_intervals(spec: CalendarSpec, since: datetime, until: datetime) -> list[Interval]:
    """The planned production time in [since, until): shifts less breaks, on working days only,
    merged and clipped to the window."""
    pieces = [
        interval
        for occurrence in shift_occurrences(spec, since, until)
        for interval in occurrence.planned
    ]
    return clip(merge(pieces), since, until)


# ---------------------------------------------------------------- interval arithmetic


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    merged: list[list[datetime]] = []
    for start, end in sorted(i for i in intervals if i[0] < i[1]):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(start, end) for start, end in merged]


def clip(intervals: Iterable[Interval], since: datetime, until: datetime) -> list[Interval]:
    return [
        (max(start, since), min(end, until))
        for start, end in intervals
        if start < until and end > since
    ]


def subtract(intervals: Iterable[Interval], cuts: Iterable[Interval]) -> list[Interval]:
    result = list(intervals)
    for cut_start, cut_end in cuts:
        if cut_start >= cut_end:
            continue
        pieces = []
        for start, end in result:
            if cut_end <= start or cut_start >= end:
                pieces.append((start, end))
                continue
            if start < cut_start:
                pieces.append((start, cut_start))
            if cut_end < end:
                pieces.append((cut_end, end))
        result = pieces
    return result


def overlap_seconds(interval: Interval, planned: Iterable[Interval]) -> float:
    """How much of `interval` lies in the (merged, sorted) planned intervals, in seconds."""
    start, end = interval
    return sum(
        (min(end, p_end) - max(start, p_start)).total_seconds()
        for p_start, p_end in planned
        if p_start < end and p_end > start
    )


def total_seconds(intervals: Iterable[Interval]) -> float:
    return sum((end - start).total_seconds() for start, end in intervals)
