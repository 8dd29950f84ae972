"""The engineers' API of SPC: `GET /api/v1/spc` (API.md, "Quality figures"), freezing a baseline
and setting a parameter's rules.

The chart's reply is built as plain dicts rather than through a serializer per point: a chart of
10,000 points would spend most of its time in DRF's field machinery. The serializers below
document it (OpenAPI) and validate the bodies of the writes.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.renderers import BrowsableAPIRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from core import roles
from core.api import EngineerAPIView, engineer_errors
from core.errors import DomainError, NotFound
from core.renderers import FastJSONRenderer
from lines.models import Line, StationKind
from quality.selection import Selection
from quality.spc import statistics
from quality.spc.models import SpcBaseline, SpcSetting
from quality.spc.selectors import (
    BATCH,
    DEFAULT_SUBGROUP,
    MAX_POINTS,
    PRESS_CYCLE,
    SpcChart,
    parameter_exists,
    parse_subgroup,
    spc_chart,
)
from quality.spc.services import freeze_baseline, set_spc_setting

# ---------------------------------------------------------------- the reply


def _number(value: float | None) -> float | None:
    return None if value is None else float(value)


def chart_reply(spc: SpcChart) -> dict[str, Any]:
    """The contract's reply for a chart (with a few fields beyond it: mean, subgroups, dropped,
    omitted, rules, hold, and per-point limits where subgroup sizes differ)."""
    chart, series = spc.chart, spc.series
    reply: dict[str, Any] = {
        "parameter": spc.parameter,
        "step": spc.selection.step,
        "line": spc.selection.line.code if spc.selection.line else None,
        "unit": series.unit,
        "chart": spc.kind,
        "subgroup": spc.subgroup or None,
        "n": chart.n,
        "subgroups": chart.subgroups,
        "dropped": chart.dropped,
        "omitted": series.omitted,
        "mean": chart.mean,
        "center": chart.center,
        "ucl": chart.ucl,
        "lcl": chart.lcl,
        "sigma_within": chart.sigma_within,
        "sigma_overall": chart.sigma_overall,
        "lsl": _number(series.lsl),
        "usl": _number(series.usl),
        "cp": chart.cp,
        "cpk": chart.cpk,
        "pp": chart.pp,
        "ppk": chart.ppk,
        "rules": list(chart.rules),
        "hold": bool(spc.setting and spc.setting.hold),
        "baseline": _baseline_reply(spc.baseline),
    }
    if spc.kind == statistics.IMR:
        reply["points"] = [
            {"value": p.value, "cell": p.serial, "at": p.at, "signals": signals}
            for p, signals in zip(series.points, chart.signals, strict=True)
        ]
    else:
        points = []
        for i, (group, value, signals) in enumerate(
            zip(spc.subgroups, chart.values, chart.signals, strict=True)
        ):
            point = {
                "value": value,
                "subgroup": group.label,
                "cells": [p.serial for p in group.points],
                "n": len(group.points),
                "at": group.at,
                "signals": signals,
            }
            if chart.point_ucls is not None:
                point["ucl"], point["lcl"] = chart.point_ucls[i], chart.point_lcls[i]
            points.append(point)
        reply["points"] = points
    spread = chart.range
    reply["range"] = {
        "center": spread.center,
        "ucl": spread.ucl,
        "lcl": spread.lcl,
        "points": spread.points,
    }
    if spread.point_ucls is not None:
        reply["range"]["point_centers"] = spread.point_centers
        reply["range"]["point_ucls"] = spread.point_ucls
        reply["range"]["point_lcls"] = spread.point_lcls
    return reply


def _baseline_reply(baseline: SpcBaseline | None) -> dict[str, Any] | None:
    if baseline is None:
        return None
    return {
        "version": baseline.version,
        "since": baseline.since.isoformat(),
        "until": baseline.until.isoformat(),
        "center": baseline.center,
        "sigma_within": baseline.sigma_within,
        "n": baseline.n,
        "subgroup": baseline.subgroup or None,
        "frozen_by": baseline.frozen_by.get_username(),
        "frozen_at": baseline.frozen_at.isoformat(),
    }


# ---------------------------------------------------------------- reading a chart


class ChartQueryForm(forms.Form):
    """The chart's own query parameters; the filters are quality.selection's."""

    parameter = forms.SlugField(max_length=60)
    step = forms.CharField(max_length=20)
    chart = forms.ChoiceField(choices=[(c, c) for c in statistics.CHARTS], required=False)
    subgroup = forms.CharField(max_length=20, required=False)
    rules = forms.CharField(max_length=40, required=False)

    def clean_rules(self) -> tuple[int, ...] | None:
        text = self.cleaned_data["rules"].strip()
        if not text:
            return None
        try:
            rules = tuple(sorted({int(r) for r in text.split(",") if r.strip()}))
        except ValueError:
            raise forms.ValidationError("Rule numbers 1 to 8, comma-separated.") from None
        if any(r not in statistics.NELSON_RULES for r in rules):
            raise forms.ValidationError("Rule numbers 1 to 8, comma-separated.")
        return rules

    def clean(self) -> dict:
        data = super().clean()
        if data.get("chart") in (statistics.XBAR_R, statistics.XBAR_S):
            try:
                data["subgroup"] = parse_subgroup(data.get("subgroup", ""))
            except ValueError as error:
                self.add_error("subgroup", str(error))
        return data


def chart_from_query(query: Any) -> SpcChart:
    """The chart a query asks for, or the DomainError the contract names: 400 `invalid` (a
    missing parameter or step, a bad filter, chart or subgroup), 404 `unknown_step`, 404
    `unknown_parameter` (no measurement of that name at that step, of that line if given)."""
    form = ChartQueryForm(query)
    form.is_valid()
    errors = {name: list(problems) for name, problems in form.errors.items()}
    step = (query.get("step") or "").strip()
    if step and step not in StationKind.values:
        raise NotFound(
            "unknown_step",
            _("No step %(step)s: steps are %(steps)s.")
            % {"step": step, "steps": ", ".join(StationKind.values)},
        )
    selection, filter_errors = Selection.from_query(query)
    errors.update({k: v for k, v in filter_errors.items() if k not in errors})
    if errors:
        raise DomainError("invalid", _("The request is not valid."), status=400, errors=errors)
    data = form.cleaned_data
    parameter = data["parameter"]
    kind = data.get("chart") or statistics.IMR
    try:
        chart = spc_chart(
            selection,
            parameter,
            kind=kind,
            subgroup=data.get("subgroup") or "",
            rules=data.get("rules"),
        )
    except ValueError as error:  # X-bar R and a natural subgroup larger than the table
        raise DomainError(
            "invalid", _("The request is not valid."), status=400, errors={"subgroup": [str(error)]}
        ) from None
    # A chart without points is either a quiet window or a parameter never measured there.
    if not chart.series.points and not parameter_exists(step, parameter, selection.line):
        raise NotFound(
            "unknown_parameter",
            (
                _("No %(parameter)s was measured at %(step)s of line %(line)s.")
                if selection.line
                else _("No %(parameter)s was measured at %(step)s.")
            )
            % {"parameter": parameter, "step": step, "line": getattr(selection.line, "code", "")},
        )
    return chart


# ---------------------------------------------------------------- schema


class SpcPointSerializer(serializers.Serializer):
    value = serializers.FloatField(help_text="The value (I-MR) or the subgroup's mean (X-bar)")
    cell = serializers.CharField(required=False, help_text="I-MR: the cell's serial")
    subgroup = serializers.CharField(
        required=False, help_text="X-bar: the press cycle, batch, or first..last serial"
    )
    cells = serializers.ListField(child=serializers.CharField(), required=False)
    n = serializers.IntegerField(required=False, help_text="X-bar: the subgroup's size")
    at = serializers.DateTimeField(help_text="occurred_at (of a subgroup's last point)")
    signals = serializers.ListField(
        child=serializers.IntegerField(), help_text="Nelson's rules this point completes"
    )
    ucl = serializers.FloatField(required=False, help_text="Where subgroup sizes differ")
    lcl = serializers.FloatField(required=False, help_text="Where subgroup sizes differ")


class SpcRangeSerializer(serializers.Serializer):
    center = serializers.FloatField(allow_null=True)
    ucl = serializers.FloatField(allow_null=True)
    lcl = serializers.FloatField(allow_null=True)
    points = serializers.ListField(
        child=serializers.FloatField(),
        help_text="Moving ranges (I-MR: one fewer than the points, from the second on), "
        "ranges (X-bar R) or standard deviations (X-bar S)",
    )
    point_centers = serializers.ListField(child=serializers.FloatField(), required=False)
    point_ucls = serializers.ListField(child=serializers.FloatField(), required=False)
    point_lcls = serializers.ListField(child=serializers.FloatField(), required=False)


class SpcBaselineRefSerializer(serializers.Serializer):
    version = serializers.IntegerField()
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    center = serializers.FloatField()
    sigma_within = serializers.FloatField()
    n = serializers.IntegerField()
    subgroup = serializers.CharField(allow_null=True)
    frozen_by = serializers.CharField()
    frozen_at = serializers.DateTimeField()


class SpcChartSerializer(serializers.Serializer):
    parameter = serializers.CharField()
    step = serializers.CharField()
    line = serializers.CharField(allow_null=True)
    unit = serializers.CharField()
    chart = serializers.ChoiceField(choices=statistics.CHARTS)
    subgroup = serializers.CharField(allow_null=True)
    n = serializers.IntegerField(help_text="Values charted")
    subgroups = serializers.IntegerField(allow_null=True, help_text="X-bar: subgroups charted")
    dropped = serializers.IntegerField(help_text="X-bar: subgroups of one value left out")
    omitted = serializers.IntegerField(help_text=f"Earlier points beyond the latest {MAX_POINTS:,}")
    mean = serializers.FloatField(allow_null=True)
    center = serializers.FloatField(allow_null=True)
    ucl = serializers.FloatField(allow_null=True)
    lcl = serializers.FloatField(allow_null=True)
    sigma_within = serializers.FloatField(allow_null=True)
    sigma_overall = serializers.FloatField(allow_null=True)
    lsl = serializers.FloatField(allow_null=True)
    usl = serializers.FloatField(allow_null=True)
    cp = serializers.FloatField(allow_null=True)
    cpk = serializers.FloatField(allow_null=True)
    pp = serializers.FloatField(allow_null=True)
    ppk = serializers.FloatField(allow_null=True)
    rules = serializers.ListField(child=serializers.IntegerField())
    hold = serializers.BooleanField(help_text="Signals hold the cell (spc_signal), else flag")
    baseline = SpcBaselineRefSerializer(allow_null=True, help_text="Phase II limits in force")
    points = SpcPointSerializer(many=True)
    range = SpcRangeSerializer()


def _query(name: str, description: str, **kwargs: Any) -> OpenApiParameter:
    return OpenApiParameter(
        name, OpenApiTypes.STR, OpenApiParameter.QUERY, **kwargs, description=description
    )


CHART_PARAMETERS = [
    _query("step", "The station kind", required=True, enum=StationKind.values),
    _query("parameter", "A measurement name", required=True),
    _query("chart", "imr (default), xbar_r or xbar_s", enum=list(statistics.CHARTS)),
    _query(
        "subgroup",
        f"X-bar: {PRESS_CYCLE}, {BATCH}, or n consecutive cells (2-25; {DEFAULT_SUBGROUP} "
        "unless given)",
    ),
    _query("rules", "Nelson's rules to judge, e.g. 1,2,5 (default: the parameter's settings)"),
    *(
        _query(name, description)
        for name, description in (
            ("line", "Line code"),
            ("station", "Station code"),
            ("equipment", "Press cycle, vessel load or fixture id"),
            ("batch", "Batch code"),
            ("design", "Cell design code"),
            ("recipe_version", "Recipe version number"),
            ("lot", "Material lot code (and lots cut from it)"),
            ("since", "RFC 3339, on occurred_at"),
            ("until", "RFC 3339, on occurred_at (exclusive)"),
        )
    ),
]


class SpcChartView(EngineerAPIView):
    """A control chart of one parameter at one step, over the quality filters."""

    permissions = {"GET": roles.VIEW_BATCHES}
    renderer_classes = [FastJSONRenderer, BrowsableAPIRenderer]

    @extend_schema(
        parameters=CHART_PARAMETERS,
        responses={200: SpcChartSerializer, **engineer_errors(400, 401, 403, 404)},
        description="400 invalid: a missing parameter or step, a bad filter, chart, rules or "
        "subgroup (X-bar: 2 to 25 consecutive cells). 404 unknown_step, unknown_parameter.",
    )
    def get(self, request: Request) -> Response:
        return Response(chart_reply(chart_from_query(request.query_params)))


# ---------------------------------------------------------------- freezing and settings


class _ParameterKeySerializer(serializers.Serializer):
    line = serializers.CharField(min_length=1, max_length=30, help_text="Line code")
    step = serializers.ChoiceField(choices=StationKind.choices)
    parameter = serializers.SlugField(min_length=1, max_length=60)
    note = serializers.CharField(
        min_length=1, max_length=2000, help_text="Why (the audit trail keeps it)"
    )

    def validate_line(self, code: str) -> Line:
        line = Line.objects.filter(code=code).first()
        if line is None:
            raise serializers.ValidationError(f"No line {code}.")
        return line

    def validate(self, data: dict) -> dict:
        if not parameter_exists(data["step"], data["parameter"], data["line"]):
            raise NotFound(
                "unknown_parameter",
                _("No %(parameter)s was measured at %(step)s of line %(line)s.")
                % {"parameter": data["parameter"], "step": data["step"], "line": data["line"].code},
            )
        return data


class FreezeBaselineSerializer(_ParameterKeySerializer):
    chart = serializers.ChoiceField(choices=statistics.CHARTS, default=statistics.IMR)
    subgroup = serializers.CharField(max_length=20, required=False, default="")
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()

    def validate(self, data: dict) -> dict:
        if data["since"] >= data["until"]:
            raise serializers.ValidationError({"until": ["Must be later than since."]})
        if data["chart"] != statistics.IMR:
            try:
                data["subgroup"] = parse_subgroup(data["subgroup"])
            except ValueError as error:
                raise serializers.ValidationError({"subgroup": [str(error)]}) from None
        return super().validate(data)


class SpcBaselineSerializer(serializers.ModelSerializer):
    line = serializers.SlugRelatedField(slug_field="code", read_only=True)
    frozen_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = SpcBaseline
        fields = [
            "line", "step", "parameter", "chart", "version", "withdrawn", "center",
            "sigma_within", "subgroup", "n", "since", "until", "note", "frozen_by", "frozen_at",
        ]  # fmt: skip


class SpcBaselineView(EngineerAPIView):
    """Freeze control limits from a period's points (phase II)."""

    permissions = {"POST": roles.FREEZE_SPC_BASELINE}

    @extend_schema(
        request=FreezeBaselineSerializer,
        responses={201: SpcBaselineSerializer, **engineer_errors(400, 401, 403, 404, 415)},
        description="The period's center and sigma within become the parameter's next baseline "
        "version for that chart: its charts on that line take their limits from it. 404 "
        "unknown_parameter; 400 invalid where the period has fewer than two points.",
    )
    def post(self, request: Request) -> Response:
        body = FreezeBaselineSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        try:
            baseline = freeze_baseline(by=request.user, **data)
        except ValueError as error:
            raise DomainError(
                "invalid",
                _("The request is not valid."),
                status=400,
                errors={"subgroup": [str(error)]},
            ) from None
        return Response(SpcBaselineSerializer(baseline).data, status=status.HTTP_201_CREATED)


class SpcSettingRequestSerializer(_ParameterKeySerializer):
    rules = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=8), max_length=8
    )
    hold = serializers.BooleanField(help_text="Signals hold the cell; otherwise they flag")


class SpcSettingSerializer(serializers.ModelSerializer):
    line = serializers.SlugRelatedField(slug_field="code", read_only=True)
    set_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = SpcSetting
        fields = [
            "line",
            "step",
            "parameter",
            "version",
            "rules",
            "hold",
            "note",
            "set_by",
            "set_at",
        ]


class SpcSettingView(EngineerAPIView):
    """Choose the Nelson rules judged on a parameter and whether a signal holds the cell."""

    permissions = {"POST": roles.SET_HOLD_RULES}

    @extend_schema(
        request=SpcSettingRequestSerializer,
        responses={201: SpcSettingSerializer, **engineer_errors(400, 401, 403, 404, 415)},
    )
    def post(self, request: Request) -> Response:
        body = SpcSettingRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        setting = set_spc_setting(by=request.user, **body.validated_data)
        return Response(SpcSettingSerializer(setting).data, status=status.HTTP_201_CREATED)
