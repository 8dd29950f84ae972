"""Planned time from a line's shift calendar, worked out by hand in Tokyo time (no DST)."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from lines.calendar import (
    DEFAULT_CALENDAR,
    CalendarSpec,
    ShiftSpec,
    is_day_off,
    planned_intervals,
    shift_occurrences,
    total_seconds,
)
from lines.models import DayOff, Line, Shift, ShiftBreak, ShiftCalendar
from lines.performance import calendar_spec, write_default_calendar

TOKYO = ZoneInfo("Asia/Tokyo")


def tokyo(*args) -> datetime:
    return datetime(*args, tzinfo=TOKYO)


def test_a_default_day_is_eight_hours_with_the_lunch_break_cut_out():
    # Tuesday 2026-12-01: 08:00-12:00 and 13:00-17:00.
    planned = planned_intervals(DEFAULT_CALENDAR, tokyo(2026, 12, 1), tokyo(2026, 12, 2))
    assert planned == [
        (tokyo(2026, 12, 1, 8), tokyo(2026, 12, 1, 12)),
        (tokyo(2026, 12, 1, 13), tokyo(2026, 12, 1, 17)),
    ]
    assert total_seconds(planned) == 8 * 3600


def test_a_window_across_the_break_counts_only_the_time_outside_it():
    # 11:30-13:30: 30 min before the break, 30 min after it.
    planned = planned_intervals(
        DEFAULT_CALENDAR, tokyo(2026, 12, 1, 11, 30), tokyo(2026, 12, 1, 13, 30)
    )
    assert total_seconds(planned) == 3600


def test_a_window_given_in_utc_is_placed_on_tokyo_time():
    utc = ZoneInfo("UTC")
    # 2026-12-01 00:00-04:00 UTC is 09:00-13:00 in Tokyo: 3 h before the break.
    planned = planned_intervals(
        DEFAULT_CALENDAR, datetime(2026, 12, 1, 0, tzinfo=utc), datetime(2026, 12, 1, 4, tzinfo=utc)
    )
    assert total_seconds(planned) == 3 * 3600


def test_weekends_public_holidays_and_the_year_end_are_off():
    # Week of 2026-11-16 (Mon) to 22 (Sun): five days of eight hours.
    week = planned_intervals(DEFAULT_CALENDAR, tokyo(2026, 11, 16), tokyo(2026, 11, 23))
    assert total_seconds(week) == 5 * 8 * 3600
    # 2026-11-23 (Monday) is Labour Thanksgiving Day: the week of the 23rd has four days.
    holiday_week = planned_intervals(DEFAULT_CALENDAR, tokyo(2026, 11, 23), tokyo(2026, 11, 30))
    assert total_seconds(holiday_week) == 4 * 8 * 3600
    # 2026-12-28 (Mon) works; 29 Dec (Tue) to 3 Jan off; 4 Jan 2027 (Mon) works again.
    year_end = planned_intervals(DEFAULT_CALENDAR, tokyo(2026, 12, 28), tokyo(2027, 1, 5))
    assert [s.date() for s, _ in year_end] == [date(2026, 12, 28)] * 2 + [date(2027, 1, 4)] * 2
    assert is_day_off(DEFAULT_CALENDAR, date(2027, 1, 3)) and not is_day_off(
        DEFAULT_CALENDAR, date(2027, 1, 4)
    )


def test_a_night_shift_crosses_midnight_with_its_break_after_midnight():
    # Mondays 22:00-06:00 with a break 02:00-02:30 (on Tuesday).
    night = CalendarSpec(
        shifts=(ShiftSpec("night", 0, time(22), time(6), ((time(2), time(2, 30)),)),),
        public_holidays=False,
        year_end_off=False,
    )
    planned = planned_intervals(night, tokyo(2026, 11, 30), tokyo(2026, 12, 2))
    assert planned == [
        (tokyo(2026, 11, 30, 22), tokyo(2026, 12, 1, 2)),
        (tokyo(2026, 12, 1, 2, 30), tokyo(2026, 12, 1, 6)),
    ]
    # A window that opens on Tuesday still sees the part of Monday's shift after midnight.
    tuesday = planned_intervals(night, tokyo(2026, 12, 1), tokyo(2026, 12, 1, 12))
    assert total_seconds(tuesday) == 2 * 3600 + 3.5 * 3600
    (occurrence,) = shift_occurrences(night, tokyo(2026, 12, 1), tokyo(2026, 12, 1, 12))
    assert (occurrence.name, occurrence.day) == ("night", date(2026, 11, 30))


def test_a_shift_boundary_splits_nothing_when_shifts_meet():
    two_shifts = CalendarSpec(
        shifts=(
            ShiftSpec("early", 1, time(6), time(14)),
            ShiftSpec("late", 1, time(14), time(22)),
        ),
        public_holidays=False,
        year_end_off=False,
    )
    planned = planned_intervals(two_shifts, tokyo(2026, 12, 1, 13), tokyo(2026, 12, 1, 15))
    assert planned == [(tokyo(2026, 12, 1, 13), tokyo(2026, 12, 1, 15))]
    names = [
        o.name
        for o in shift_occurrences(two_shifts, tokyo(2026, 12, 1, 13), tokyo(2026, 12, 1, 15))
    ]
    assert names == ["early", "late"]


def test_a_line_without_a_calendar_of_its_own_works_to_the_default(plant):
    line = Line.objects.get(code="proto")
    assert not ShiftCalendar.objects.filter(line=line).exists()
    spec = calendar_spec(line)
    assert spec.time_zone == "Asia/Tokyo"
    assert (
        total_seconds(planned_intervals(spec, tokyo(2026, 12, 1), tokyo(2026, 12, 2))) == 8 * 3600
    )


def test_a_day_off_an_engineer_adds_takes_the_day_out(plant):
    line = Line.objects.get(code="proto")
    DayOff.objects.create(line=line, date=date(2026, 12, 1), reason="Plant shutdown")
    spec = calendar_spec(line)
    assert planned_intervals(spec, tokyo(2026, 12, 1), tokyo(2026, 12, 2)) == []
    assert (
        total_seconds(planned_intervals(spec, tokyo(2026, 12, 2), tokyo(2026, 12, 3))) == 8 * 3600
    )


def test_a_calendar_of_its_own_replaces_the_default(plant, line_engineer):
    line = Line.objects.get(code="proto")
    calendar = write_default_calendar(line, by=line_engineer)
    monday = Shift.objects.get(calendar=calendar, weekday=0)
    ShiftBreak.objects.filter(shift=monday).update(start=time(11, 30), end=time(12))
    Shift.objects.create(calendar=calendar, name="sat", weekday=5, start=time(9), end=time(12))
    spec = calendar_spec(line)
    # Monday 2026-11-30: 08:00-17:00 less 30 min; Saturday 12-05: 3 h.
    assert (
        total_seconds(planned_intervals(spec, tokyo(2026, 11, 30), tokyo(2026, 12, 1)))
        == 8.5 * 3600
    )
    assert (
        total_seconds(planned_intervals(spec, tokyo(2026, 12, 5), tokyo(2026, 12, 6))) == 3 * 3600
    )
    with pytest.raises(Exception, match="own calendar already"):
        write_default_calendar(line, by=line_engineer)
