"""Engineers' API (v1): session or personal token (never station tokens), the role permissions of
core.roles, reads through batches.selectors and every change through batches.services."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import django_filters
from django.db.models import QuerySet
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.renderers import BrowsableAPIRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from batches import selectors
from batches.api import serializers as s
from batches.energy import cell_energy
from batches.models import Batch, Cell, Hold, MaterialLot, MaterialRole
from batches.services import create_batch, hold_batch, hold_lot, release_hold
from core import roles
from core.api import EngineerAPIView, EngineerListView, engineer_errors
from core.errors import DomainError, NotFound
from core.renderers import JSONTextRenderer
from lines.models import CellDesign, Line, Route

# ---------------------------------------------------------------- lines


def _listed(serializer: type, *codes: int) -> Any:
    """Documents a list's GET: a page of `serializer` rows, or the error answers `codes` (404: a
    page past the last), and those any operation may get."""
    return extend_schema_view(
        get=extend_schema(responses={200: serializer(many=True), **engineer_errors(*codes)})
    )


@_listed(s.LineSerializer, 401, 403, 404)
class LineListView(EngineerListView):
    permissions = {"GET": roles.VIEW_LINES}
    serializer_class = s.LineSerializer

    def get_queryset(self) -> QuerySet:
        return selectors.lines_with_master_data()

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "designs": selectors.designs_by_line()}


# ---------------------------------------------------------------- batches


class BatchFilter(django_filters.FilterSet):
    line = django_filters.CharFilter(field_name="line__code", help_text="Line code")
    status = django_filters.ChoiceFilter(choices=Batch.Status.choices)

    class Meta:
        model = Batch
        fields = ["line", "status"]


@_listed(s.BatchSerializer, 400, 401, 403, 404)
class BatchListView(EngineerListView):
    permissions = {"GET": roles.VIEW_BATCHES, "POST": roles.CREATE_BATCH}
    serializer_class = s.BatchSerializer
    filterset_class = BatchFilter

    def get_queryset(self) -> QuerySet:
        return selectors.batch_list()

    @extend_schema(
        request=s.BatchCreateSerializer,
        responses={201: s.BatchCreatedSerializer, **engineer_errors(400, 401, 403, 415)},
        description="Plan a batch and create its cells (serials `<batch code>-<position>`).",
    )
    def post(self, request: Request) -> Response:
        body = s.BatchCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        line = _by_code(Line.objects.all(), "line", data["line"])
        batch = create_batch(
            line=line,
            design=_by_code(CellDesign.objects.all(), "design", data["design"]),
            route=_by_code(Route.objects.filter(line=line), "route", data["route"]),
            quantity=data["quantity"],
            material_lots=data.get("material_lots") or {},
            by=request.user,
        )
        batch = selectors.batch_detail(batch.code)
        batch.api_serials = list(batch.cells.order_by("position").values_list("serial", flat=True))
        return Response(s.BatchCreatedSerializer(batch).data, status=status.HTTP_201_CREATED)


def _by_code(queryset: QuerySet, field: str, code: str) -> Any:
    """A code in a request body that names nothing is bad input (400 on that field), not a 404."""
    found = queryset.filter(code=code).first()
    if found is None:
        raise DomainError(
            "invalid",
            _("The request is not valid."),
            status=400,
            errors={field: [f"No {field} {code}."]},
        )
    return found


class BatchDetailView(EngineerAPIView):
    permissions = {"GET": roles.VIEW_BATCHES}

    @extend_schema(responses={200: s.BatchDetailSerializer, **engineer_errors(401, 403, 404)})
    def get(self, request: Request, code: str) -> Response:
        batch = _or_404(selectors.batch_detail, Batch, code)
        # The cells are rows already in the contract's shape: through a serializer field per
        # cell, 10,000 of them would take seconds.
        return Response(
            {**s.BatchSerializer(batch).data, "cells": selectors.batch_cells_for_api(batch)}
        )


class BatchHoldView(EngineerAPIView):
    permissions = {"POST": roles.HOLD}

    @extend_schema(
        request=s.HoldRequestSerializer,
        responses={201: s.HoldSerializer, **engineer_errors(400, 401, 403, 404, 415)},
        description="Hold every cell of the batch; the next station's track-in refuses them.",
    )
    def post(self, request: Request, code: str) -> Response:
        batch = _get(Batch, code=code)
        return _opened(request, lambda reason: hold_batch(batch, by=request.user, reason=reason))


def _or_404(select: Any, model: type, code: str) -> Any:
    """`select(code)`, or 404 with the contract's error code."""
    try:
        return select(code)
    except model.DoesNotExist:
        raise NotFound(
            "not_found",
            _("No %(model)s %(code)s.") % {"model": model._meta.verbose_name, "code": code},
        ) from None


def _get(model: type, **lookup: Any) -> Any:
    return _or_404(lambda _: model.objects.get(**lookup), model, next(iter(lookup.values())))


def _opened(request: Request, open_hold: Callable[[str], Hold]) -> Response:
    """A hold asked for with its reason (HoldRequestSerializer): 201 with the hold opened."""
    body = s.HoldRequestSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    hold = open_hold(body.validated_data["reason"])
    return Response(s.HoldSerializer(_hold(hold.pk)).data, status=status.HTTP_201_CREATED)


def _hold(pk: int) -> Hold:
    return selectors.holds_with_details(Hold.objects.filter(pk=pk)).get()


# ---------------------------------------------------------------- cells


class CellDetailView(EngineerAPIView):
    permissions = {"GET": roles.VIEW_CELLS}

    @extend_schema(responses={200: s.CellDetailSerializer, **engineer_errors(401, 403, 404)})
    def get(self, request: Request, serial: str) -> Response:
        cell = _or_404(selectors.cell_detail, Cell, serial)
        cell.api_genealogy = selectors.genealogy_of(cell)
        cell.api_lots = selectors.lots_consumed(cell.api_genealogy)
        cell.api_runs = selectors.runs_of(cell, with_curves=False)
        cell.api_energy = cell_energy(cell)
        return Response(s.CellDetailSerializer(cell).data)


# ---------------------------------------------------------------- lots


class LotFilter(django_filters.FilterSet):
    role = django_filters.ChoiceFilter(choices=MaterialRole.choices)
    status = django_filters.ChoiceFilter(choices=MaterialLot.Status.choices)

    class Meta:
        model = MaterialLot
        fields = ["role", "status"]


@_listed(s.LotSerializer, 400, 401, 403, 404)
class LotListView(EngineerListView):
    permissions = {"GET": roles.VIEW_LOTS}
    serializer_class = s.LotSerializer
    filterset_class = LotFilter

    def get_queryset(self) -> QuerySet:
        return selectors.lot_list()


class LotDetailView(EngineerAPIView):
    permissions = {"GET": roles.VIEW_LOTS}
    # `cells` comes from the database as JSON text (selectors.lot_cell_serials).
    renderer_classes = [JSONTextRenderer, BrowsableAPIRenderer]

    @extend_schema(responses={200: s.LotDetailSerializer, **engineer_errors(401, 403, 404)})
    def get(self, request: Request, code: str) -> Response:
        lot = _or_404(selectors.lot_detail, MaterialLot, code)
        below = selectors.lots_below(lot)
        lot.api_children = sorted(child.code for child in below if child.parent_id == lot.pk)
        lot.api_cells = selectors.lot_cell_serials([lot.pk, *(child.pk for child in below)])
        return Response(s.LotDetailSerializer(lot).data)


class LotHoldView(EngineerAPIView):
    permissions = {"POST": roles.HOLD}

    @extend_schema(
        request=s.HoldRequestSerializer,
        responses={201: s.HoldSerializer, **engineer_errors(400, 401, 403, 404, 415)},
        description="Hold the lot: every cell that consumed it or any lot cut from it (a roll's "
        "sheets, at any depth), now and whenever one consumes them later.",
    )
    def post(self, request: Request, code: str) -> Response:
        lot = _get(MaterialLot, code=code)
        return _opened(request, lambda reason: hold_lot(lot, by=request.user, reason=reason))


# ---------------------------------------------------------------- holds


class HoldFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=Hold.Status.choices)

    class Meta:
        model = Hold
        fields = ["status"]


@_listed(s.HoldSerializer, 400, 401, 403, 404)
class HoldListView(EngineerListView):
    permissions = {"GET": roles.VIEW_HOLDS}
    serializer_class = s.HoldSerializer
    filterset_class = HoldFilter

    def get_queryset(self) -> QuerySet:
        return selectors.holds_list()


class HoldReleaseView(EngineerAPIView):
    permissions = {"POST": roles.DISPOSITION}

    @extend_schema(
        request=s.ReleaseRequestSerializer,
        responses={200: s.HoldSerializer, **engineer_errors(400, 401, 403, 404, 409, 415)},
        description="Close an open hold with quality's disposition for its cells.",
    )
    def post(self, request: Request, pk: int) -> Response:
        hold = _get(Hold, pk=pk)
        body = s.ReleaseRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        release_hold(
            hold,
            by=request.user,
            disposition=body.validated_data["disposition"],
            reason=body.validated_data["reason"],
            rework_at=body.validated_data.get("rework_step", ""),
        )
        return Response(s.HoldSerializer(_hold(hold.pk)).data)
