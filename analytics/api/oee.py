"""The engineers' API of line performance: OEE of a station, or a line, over a window."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from analytics.oee import as_json, read_window
from core import roles
from core.api import EngineerAPIView, engineer_errors
from core.errors import NotFound
from core.validation import is_identifier
from lines.models import Line, Station
from lines.performance import calendar_spec

# A window longer than this is refused: the history it reads grows with it.
MAX_WINDOW = timedelta(days=366)


def _has_offset(text: str) -> bool:
    text = text.strip()
    return text.endswith(("Z", "z")) or (len(text) > 6 and text[-6] in "+-" and text[-3] == ":")


class OffsetDateTimeField(serializers.DateTimeField):
    def to_internal_value(self, value):
        if isinstance(value, str) and not _has_offset(value):
            raise serializers.ValidationError("RFC 3339 with an offset (Z or +09:00).")
        return super().to_internal_value(value)


class OeeQuerySerializer(serializers.Serializer):
    station = serializers.CharField(
        required=False, max_length=40, help_text="A station's code (or `line`)"
    )
    line = serializers.CharField(
        required=False, max_length=30, help_text="A line's code: its stations together"
    )
    since = OffsetDateTimeField(
        required=False, help_text="RFC 3339; the start of today in the line's zone by default"
    )
    until = OffsetDateTimeField(required=False, help_text="RFC 3339; now by default")
    by = serializers.ChoiceField(
        choices=["shift"], required=False, help_text="`shift`: also the figures of each shift"
    )

    def validate(self, data):
        for name in ("station", "line"):
            if name in data and not is_identifier(data[name]):
                raise serializers.ValidationError({name: ["No control characters."]})
        if ("station" in data) == ("line" in data):
            raise serializers.ValidationError({"station": ["Give a station or a line, one."]})
        if "since" in data and "until" in data:
            if data["since"] >= data["until"]:
                raise serializers.ValidationError({"until": ["After since."]})
            if data["until"] - data["since"] > MAX_WINDOW:
                raise serializers.ValidationError({"until": ["At most 366 days after since."]})
        return data


class DowntimeSerializer(serializers.Serializer):
    reason = serializers.CharField(help_text="The reason's code (or the station's text)")
    category = serializers.CharField(allow_null=True, help_text="planned, unplanned or null")
    seconds = serializers.FloatField()


class FiguresSerializer(serializers.Serializer):
    planned_s = serializers.FloatField(help_text="Planned time by the line's shift calendar")
    run_s = serializers.FloatField(help_text="Running within planned time")
    down_s = serializers.FloatField(help_text="Down or in maintenance within planned time")
    availability = serializers.FloatField(allow_null=True)
    performance = serializers.FloatField(allow_null=True)
    quality = serializers.FloatField(allow_null=True)
    oee = serializers.FloatField(allow_null=True)
    ideal_cycle_s = serializers.FloatField(allow_null=True)
    total = serializers.IntegerField()
    good = serializers.IntegerField()
    downtime = DowntimeSerializer(many=True)
    failures = serializers.IntegerField(help_text="Stops in the down state in planned time")
    mtbf_s = serializers.FloatField(allow_null=True)
    mttr_s = serializers.FloatField(allow_null=True)


class ShiftFiguresSerializer(FiguresSerializer):
    shift = serializers.CharField()
    day = serializers.DateField()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()


class OeeSerializer(FiguresSerializer):
    station = serializers.CharField(allow_null=True)
    line = serializers.CharField()
    since = serializers.DateTimeField()
    until = serializers.DateTimeField(help_text="The window's end, at the latest now")
    time_zone = serializers.CharField(help_text="The line's calendar zone")
    shifts = ShiftFiguresSerializer(many=True, required=False)


class OeeView(EngineerAPIView):
    permissions = {"GET": roles.VIEW_LINES}

    @extend_schema(
        tags=["performance"],
        summary="OEE of a station or a line over a window (planned time by the shift calendar)",
        parameters=[OeeQuerySerializer],
        responses={200: OeeSerializer, **engineer_errors(400, 401, 403, 404)},
    )
    def get(self, request: Request) -> Response:
        query = OeeQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        if "station" in data:
            station = Station.objects.select_related("line").filter(code=data["station"]).first()
            if station is None:
                raise NotFound(
                    "unknown_station", _("No station %(station)s.") % {"station": data["station"]}
                )
            line, stations = station.line, [station]
        else:
            line = Line.objects.filter(code=data["line"]).first()
            if line is None:
                raise NotFound("unknown_line", _("No line %(line)s.") % {"line": data["line"]})
            stations = list(line.stations.select_related("line").order_by("code"))
            station = None
        zone = calendar_spec(line).zone
        now = timezone.now()
        until = data.get("until", now)
        since = data.get("since") or datetime.combine(
            min(until, now).astimezone(zone).date(), time(0), tzinfo=zone
        )
        if since >= until or until - since > MAX_WINDOW:
            raise serializers.ValidationError({"since": ["Before until, within 366 days."]})
        window = read_window(stations, since, until, now=now)
        figures = window.line_figures(stations)
        body = {
            "station": station.code if station else None,
            "line": line.code,
            "since": since,
            "until": window.until,
            "time_zone": str(zone),
            **as_json(figures, window.categories),
        }
        if data.get("by") == "shift":
            body["shifts"] = [
                {
                    "shift": occurrence.name,
                    "day": occurrence.day,
                    "start": occurrence.start,
                    "end": occurrence.end,
                    **as_json(shift_figures, window.categories),
                }
                for occurrence, shift_figures in window.shifts(stations)
            ]
        return Response(OeeSerializer(body).data)
