"""The engineers' API of quality figures over selected results: yield and the defect Pareto."""

from __future__ import annotations

from collections.abc import Mapping

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from core import roles
from core.api import EngineerAPIView, engineer_errors
from lines.models import StationKind
from quality import pareto, yields
from quality.selection import Selection

# The filters every quality figure accepts (quality.selection), as the schema documents them.
SELECTION_PARAMETERS = [
    OpenApiParameter("line", str, description="Line code"),
    OpenApiParameter("step", str, enum=StationKind.values, description="Station kind"),
    OpenApiParameter("station", str, description="Station code"),
    OpenApiParameter("equipment", str, description="Press cycle, vessel load or fixture id"),
    OpenApiParameter("batch", str, description="Batch code"),
    OpenApiParameter("design", str, description="Cell design code"),
    OpenApiParameter("recipe_version", int, description="Recipe version number"),
    OpenApiParameter(
        "lot", str, description="Material lot code: the cells that consumed it or a lot cut from it"
    ),
    OpenApiParameter(
        "since", OpenApiTypes.DATETIME, description="Results that occurred at or after (RFC 3339)"
    ),
    OpenApiParameter(
        "until", OpenApiTypes.DATETIME, description="Results that occurred before (RFC 3339)"
    ),
]


def selection_of(query: Mapping[str, str], **choices: tuple[str, ...]) -> Selection:
    """The selection the query's filters ask for; 400 `invalid` with the field errors of the
    filters and of each named choice (a query parameter and its allowed values)."""
    selection, errors = Selection.from_query(query)
    for name, allowed in choices.items():
        if (query.get(name) or allowed[0]) not in allowed:
            errors[name] = [f"Must be one of: {', '.join(allowed)}."]
    if errors:
        raise exceptions.ValidationError(errors)
    return selection


# ---------------------------------------------------------------- yield


class YieldRowSerializer(serializers.Serializer):
    key = serializers.CharField(
        help_text="The station kind (by=step), the batch code, the date (YYYY-MM-DD in the "
        "plant's time zone) or the line code"
    )
    started = serializers.IntegerField(
        help_text="At a step: cells whose first result there is selected. Otherwise: cells "
        "counted at any step, each in one row (its batch, line, or the day of its first result)"
    )
    first_pass = serializers.IntegerField(
        help_text="At a step: of those, cells whose first result there passed. Otherwise: cells "
        "whose first result passed at every step they were counted at"
    )
    failed = serializers.IntegerField(help_text="started - first_pass")
    reworked = serializers.IntegerField(
        help_text="Cells with more than one result at the step (otherwise: at some step)"
    )
    scrapped = serializers.IntegerField(
        help_text="Cells scrapped (at a step: whose last result was at that step)"
    )
    fpy = serializers.FloatField(allow_null=True, help_text="first_pass / started, 0-1")
    scrap_rate = serializers.FloatField(allow_null=True, help_text="scrapped / started")
    rework_rate = serializers.FloatField(allow_null=True, help_text="reworked / started")


class YieldSerializer(serializers.Serializer):
    by = serializers.ChoiceField(choices=yields.BY)
    rows = YieldRowSerializer(many=True, help_text="Steps in route order; others by first start")
    rty = serializers.FloatField(
        allow_null=True, help_text="Rolled throughput yield: the product of the steps' FPY"
    )
    total = YieldRowSerializer(help_text="The whole selection, counted per cell")


class YieldView(EngineerAPIView):
    permissions = {"GET": roles.VIEW_CELLS}

    @extend_schema(
        parameters=[
            OpenApiParameter("by", str, enum=list(yields.BY), description="Rows per (step)"),
            *SELECTION_PARAMETERS,
        ],
        responses={200: YieldSerializer, **engineer_errors(400, 401, 403)},
        description="First-pass yield over the selected results: a cell is first-pass at a step "
        "when its first result there passed. Rows per step, batch, day or line, the rolled "
        "throughput yield (product of the steps' FPY), scrap and rework rates.",
    )
    def get(self, request: Request) -> Response:
        query = request.query_params
        selection = selection_of(query, by=yields.BY)
        report = yields.yield_report(selection, by=query.get("by") or "step")
        return Response(YieldSerializer(report).data)


# ---------------------------------------------------------------- Pareto


class ParetoRowSerializer(serializers.Serializer):
    key = serializers.CharField(help_text="The defect code or the violated parameter")
    count = serializers.IntegerField(help_text="Occurrences in the selected results")
    share = serializers.FloatField(help_text="count / all occurrences, 0-1")
    cumulative_share = serializers.FloatField(help_text="This row's share and those above it")


class ParetoSerializer(serializers.Serializer):
    by = serializers.ChoiceField(choices=list(pareto.KINDS))
    total = serializers.IntegerField(help_text="All occurrences")
    rows = ParetoRowSerializer(many=True, help_text="Most frequent first")


class ParetoView(EngineerAPIView):
    permissions = {"GET": roles.VIEW_CELLS}

    @extend_schema(
        parameters=[
            OpenApiParameter("by", str, enum=list(pareto.KINDS), description="(defect)"),
            *SELECTION_PARAMETERS,
        ],
        responses={200: ParetoSerializer, **engineer_errors(400, 401, 403)},
        description="The defect Pareto of the selected results, by defect code or by violated "
        "parameter: each one's occurrences, share and cumulative share, most frequent first.",
    )
    def get(self, request: Request) -> Response:
        query = request.query_params
        selection = selection_of(query, by=tuple(pareto.KINDS))
        by = query.get("by") or "defect"
        rows = pareto.pareto(selection, by)
        total = sum(row.count for row in rows)
        return Response(ParetoSerializer({"by": by, "total": total, "rows": rows}).data)
