"""Line performance pages: a line's OEE (the day's and the week's per station, a timeline of
states, the downtime Pareto) and a station's stops, whose reasons engineers assign or correct.
Times are shown in the line's calendar zone, labelled with it."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from analytics.oee import Figures, Window, pareto, read_window
from core import roles
from dashboard.views.common import act, back_to
from lines.models import DowntimeReason, Line, RecipeVersion, Station, StationStateChange
from lines.performance import (
    STOP_STATES,
    calendar_spec,
    correct_stop_reason,
    ideal_cycle_times,
    set_ideal_cycle_time,
)

STOPS_DAYS = 7
STOPS_SHOWN = 200


def _local_day(request: HttpRequest, zone) -> date:
    """The day asked for (?day=YYYY-MM-DD), else today in the plant's zone."""
    today = timezone.now().astimezone(zone).date()
    try:
        day = date.fromisoformat(request.GET.get("day", ""))
    except ValueError:
        return today
    return min(day, today)


def _timeline(window: Window, stations: list[Station], day_start: datetime) -> list[dict]:
    """Each station's states over the day as hours from local midnight, for the chart."""
    rows = []
    for station in stations:
        for segment in window.timeline(station):
            if segment.end <= day_start:
                continue
            rows.append(
                {
                    "station": station.code,
                    "state": segment.state,
                    "reason": segment.reason,
                    "from": round(
                        (max(segment.start, day_start) - day_start).total_seconds() / 3600, 4
                    ),
                    "to": round((segment.end - day_start).total_seconds() / 3600, 4),
                }
            )
    return rows


@roles.page_permission(roles.VIEW_LINES)
def line_oee(request: HttpRequest, code: str) -> HttpResponse:
    line = get_object_or_404(Line, code=code)
    spec = calendar_spec(line)
    zone = spec.zone
    day = _local_day(request, zone)
    day_start = datetime.combine(day, time(0), tzinfo=zone)
    week_start = day_start - timedelta(days=day.weekday())
    stations = list(line.stations.order_by("code"))
    # One read for the week; the day's figures are the same history cut shorter.
    window = read_window(stations, week_start, day_start + timedelta(days=1))
    rows, day_total, week_total = [], Figures(), Figures()
    for station in stations:
        of_day = window.figures(station, day_start)
        of_week = window.figures(station)
        rows.append({"station": station, "day": of_day, "week": of_week})
        day_total, week_total = day_total.add(of_day), week_total.add(of_week)
    downtime = pareto(week_total, window.categories)
    chart = {
        "stations": [station.code for station in stations],
        "segments": _timeline(window, stations, day_start),
        "pareto": [
            {"reason": d["reason"], "minutes": round(d["seconds"] / 60, 1)} for d in downtime
        ],
    }
    return render(
        request,
        "lines/oee.html",
        {
            "line": line,
            "zone": spec.time_zone,
            "day": day,
            "previous_day": day - timedelta(days=1),
            "next_day": day + timedelta(days=1)
            if day < timezone.now().astimezone(zone).date()
            else None,
            "week_start": week_start.date(),
            "until": window.until.astimezone(zone),
            "rows": rows,
            "day_total": day_total,
            "week_total": week_total,
            "downtime": downtime,
            "chart": chart,
            "shifts": window.shifts(stations),
            "cycle_times": _cycle_times(line),
        },
    )


def _cycle_times(line: Line) -> list[tuple[RecipeVersion, float | None]]:
    """The line's recipe versions a station may run or has run, with their ideal cycle times."""
    versions = list(
        RecipeVersion.objects.filter(recipe__line=line)
        .exclude(status=RecipeVersion.Status.DRAFT)
        .select_related("recipe__design")
        .order_by("recipe__station_kind", "recipe__design__code", "-version")
    )
    ideals = ideal_cycle_times(v.pk for v in versions)
    return [(version, ideals.get(version.pk)) for version in versions]


class IdealCycleTimeForm(forms.Form):
    ideal_cycle_s = forms.FloatField(min_value=0.001, max_value=10**7)


@roles.page_permission(roles.SET_IDEAL_CYCLE_TIME)
@require_POST
def ideal_cycle_time(request: HttpRequest, pk: int) -> HttpResponse:
    version = get_object_or_404(
        RecipeVersion.objects.select_related("recipe__line").exclude(
            status=RecipeVersion.Status.DRAFT
        ),
        pk=pk,
    )
    return act(
        request,
        IdealCycleTimeForm(request.POST),
        lambda data: set_ideal_cycle_time(
            version, ideal_cycle_s=data["ideal_cycle_s"], by=request.user
        ),
        lambda row: (
            _("%(version)s runs ideally in %(seconds)s s.")
            % {"version": version, "seconds": f"{row.ideal_cycle_s:g}"}
        ),
        reverse("line-oee", args=[version.recipe.line.code]) + "#cycle-times",
    )


# ---------------------------------------------------------------- a station's stops


class StopReasonForm(forms.Form):
    reason = forms.ModelChoiceField(queryset=DowntimeReason.objects.all(), to_field_name="code")
    note = forms.CharField(max_length=200, required=False, strip=True)


@roles.page_permission(roles.VIEW_LINES)
def station_stops(request: HttpRequest, code: str) -> HttpResponse:
    station = get_object_or_404(Station.objects.select_related("line"), code=code)
    spec = calendar_spec(station.line)
    try:
        days = max(1, min(int(request.GET.get("days", STOPS_DAYS)), 92))
    except ValueError:
        days = STOPS_DAYS
    until = timezone.now()
    window = read_window([station], until - timedelta(days=days), until)
    changes = {
        change.pk: change
        for change in StationStateChange.objects.filter(
            pk__in=[s.change_id for s in window.timeline(station) if s.state in STOP_STATES]
        ).prefetch_related("corrections__reason", "corrections__corrected_by")
    }
    stops = []
    for segment in reversed(window.timeline(station)):
        if segment.state not in STOP_STATES:
            continue
        change = changes[segment.change_id]
        corrections = sorted(change.corrections.all(), key=lambda c: (c.corrected_at, c.pk))
        stops.append(
            {
                "segment": segment,
                "change": change,
                "sent": change.reason,
                "latest": corrections[-1] if corrections else None,
                "corrections": len(corrections),
                "seconds": (segment.end - segment.start).total_seconds(),
                # What the OEE counts of it: the part in planned time.
                "planned_s": window.figures(station, segment.start, segment.end).down_s,
            }
        )
        if len(stops) >= STOPS_SHOWN:
            break
    return render(
        request,
        "lines/stops.html",
        {
            "station": station,
            "line": station.line,
            "zone": spec.time_zone,
            "days": days,
            "stops": stops,
            "reasons": DowntimeReason.objects.order_by("category", "code"),
        },
    )


@roles.page_permission(roles.CORRECT_STOP_REASON)
@require_POST
def stop_reason(request: HttpRequest, pk: int) -> HttpResponse:
    change = get_object_or_404(StationStateChange.objects.select_related("station"), pk=pk)
    return act(
        request,
        StopReasonForm(request.POST),
        lambda data: correct_stop_reason(
            change, reason_code=data["reason"].code, by=request.user, note=data["note"]
        ),
        lambda correction: (
            _("The stop at %(at)s counts as %(reason)s now.")
            % {
                "at": f"{timezone.localtime(change.occurred_at):%Y-%m-%d %H:%M}",
                "reason": correction.reason.code,
            }
        ),
        back_to(request, reverse("station-stops", args=[change.station.code])),
    )
