"""Line performance's master data and its services: each line's shift calendar as the OEE reads
it, the downtime-reason catalogue, engineers' corrections of stop reasons, ideal cycle times."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.db.models import Prefetch
from django.utils.translation import gettext as _

from audit.services import record_event
from core.errors import DomainError
from lines.calendar import DEFAULT_CALENDAR, DEFAULT_SHIFTS, CalendarSpec, ShiftSpec
from lines.models import (
    DayOff,
    DowntimeReason,
    IdealCycleTime,
    Line,
    RecipeVersion,
    Shift,
    ShiftBreak,
    ShiftCalendar,
    Station,
    StationStateChange,
    StopReasonCorrection,
)

# The catalogue every database starts with (post_migrate, lines.apps); engineers add to it in the
# admin. A code already there is left as an engineer may have edited it.
DOWNTIME_REASONS = (
    ("changeover", "Changeover", DowntimeReason.Category.PLANNED),
    ("material_wait", "Waiting for material", DowntimeReason.Category.UNPLANNED),
    ("jam", "Jam", DowntimeReason.Category.UNPLANNED),
    ("maintenance", "Maintenance", DowntimeReason.Category.PLANNED),
    ("no_operator", "No operator", DowntimeReason.Category.UNPLANNED),
    ("quality_check", "Quality check", DowntimeReason.Category.PLANNED),
)

STOP_STATES = (Station.State.DOWN, Station.State.MAINTENANCE)


def seed_downtime_reasons(**_signal: Any) -> None:
    for code, label, category in DOWNTIME_REASONS:
        DowntimeReason.objects.get_or_create(
            code=code, defaults={"label": label, "category": category}
        )


# ---------------------------------------------------------------- calendars


def _spec_of(calendar: ShiftCalendar | None, days_off: Iterable[DayOff]) -> CalendarSpec:
    extra = frozenset(day.date for day in days_off)
    if calendar is None:
        return CalendarSpec(
            time_zone=DEFAULT_CALENDAR.time_zone, shifts=DEFAULT_SHIFTS, days_off=extra
        )
    shifts = tuple(
        ShiftSpec(
            shift.name,
            shift.weekday,
            shift.start,
            shift.end,
            tuple((b.start, b.end) for b in shift.breaks.all()),
        )
        for shift in calendar.shifts.all()
    )
    return CalendarSpec(
        time_zone=calendar.time_zone,
        shifts=shifts,
        public_holidays=calendar.public_holidays,
        year_end_off=calendar.year_end_off,
        days_off=extra,
    )


def calendar_specs(line_ids: Iterable[int]) -> dict[int, CalendarSpec]:
    """Each line's calendar (its own, else the default) with its days off; three queries."""
    line_ids = set(line_ids)
    calendars = {
        c.line_id: c
        for c in ShiftCalendar.objects.filter(line_id__in=line_ids).prefetch_related(
            Prefetch("shifts", queryset=Shift.objects.prefetch_related("breaks"))
        )
    }
    days_off: dict[int, list[DayOff]] = {line_id: [] for line_id in line_ids}
    for day in DayOff.objects.filter(line_id__in=line_ids):
        days_off[day.line_id].append(day)
    return {line_id: _spec_of(calendars.get(line_id), days_off[line_id]) for line_id in line_ids}


def calendar_spec(line: Line) -> CalendarSpec:
    return calendar_specs([line.pk])[line.pk]


@transaction.atomic
def write_default_calendar(line: Line, *, by: Any) -> ShiftCalendar:
    """Give a line its own calendar, written as the default, for an engineer to change."""
    if ShiftCalendar.objects.filter(line=line).exists():
        raise DomainError(
            "calendar_exists",
            _("Line %(line)s has its own calendar already.") % {"line": line.code},
        )
    calendar = ShiftCalendar.objects.create(line=line, time_zone=DEFAULT_CALENDAR.time_zone)
    for spec in DEFAULT_SHIFTS:
        shift = Shift.objects.create(
            calendar=calendar, name=spec.name, weekday=spec.weekday, start=spec.start, end=spec.end
        )
        ShiftBreak.objects.bulk_create(
            ShiftBreak(shift=shift, start=start, end=end) for start, end in spec.breaks
        )
    record_event(actor=by, verb="shift_calendar_written", subject_type="line", subject=line.code)
    return calendar


# ---------------------------------------------------------------- downtime reasons


def reason_for_code(code: str) -> DowntimeReason | None:
    return DowntimeReason.objects.filter(code=code).first() if code else None


@transaction.atomic
def correct_stop_reason(
    change: StationStateChange, *, reason_code: str, by: Any, note: str = ""
) -> StopReasonCorrection:
    """Assign or correct the reason of a past stop; the latest correction wins, the state
    history stays as it was sent."""
    if change.state not in STOP_STATES:
        raise DomainError(
            "not_a_stop",
            _("The station was %(state)s then: only stops have reasons.") % {"state": change.state},
        )  # 409: a business rule, the request itself well formed
    reason = reason_for_code(reason_code)
    if reason is None:
        raise DomainError(
            "invalid",
            _("Unknown downtime reason."),
            errors={"reason": [f"No reason {reason_code!r}."]},
            status=400,
        )
    was = effective_reason_code(change)
    correction = StopReasonCorrection.objects.create(
        state_change=change, reason=reason, note=note, corrected_by=by
    )
    record_event(
        actor=by,
        verb="stop_reason_corrected",
        subject_type="station",
        subject=change.station.code,
        reason=note,
        data={
            "state_change": change.pk,
            "occurred_at": change.occurred_at.isoformat(),
            "reason": reason.code,
            "was": was,
        },
    )
    return correction


def effective_reason_code(change: StationStateChange) -> str:
    """The reason a stop counts under: the latest correction, else the catalogue code sent,
    else the station's free text."""
    corrections = sorted(change.corrections.all(), key=lambda c: (c.corrected_at, c.pk))
    if corrections:
        return corrections[-1].reason.code
    if change.downtime_reason_id:
        return change.downtime_reason.code
    return change.reason


# ---------------------------------------------------------------- ideal cycle times


@transaction.atomic
def set_ideal_cycle_time(version: RecipeVersion, *, ideal_cycle_s: Any, by: Any) -> IdealCycleTime:
    try:
        seconds = float(ideal_cycle_s)
    except (TypeError, ValueError):
        seconds = float("nan")
    if not seconds > 0 or seconds == float("inf"):
        raise DomainError(
            "invalid",
            _("The ideal cycle time is a positive number of seconds."),
            errors={"ideal_cycle_s": ["A positive number of seconds."]},
            status=400,
        )
    row = IdealCycleTime.objects.create(recipe_version=version, ideal_cycle_s=seconds, set_by=by)
    record_event(
        actor=by,
        verb="ideal_cycle_time_set",
        subject_type="recipe",
        subject=f"{version.recipe.line.code}/{version.recipe.station_kind}",
        data={"version": version.version, "ideal_cycle_s": seconds},
    )
    return row


def ideal_cycle_times(version_ids: Iterable[int]) -> dict[int, float]:
    """The ideal cycle time in force of each version that has one (the latest row wins)."""
    found: dict[int, float] = {}
    rows = (
        IdealCycleTime.objects.filter(recipe_version_id__in=set(version_ids))
        .order_by("recipe_version_id", "-set_at", "-id")
        .distinct("recipe_version_id")
        .values_list("recipe_version_id", "ideal_cycle_s")
    )
    for version_id, seconds in rows:
        found[version_id] = seconds
    return found
