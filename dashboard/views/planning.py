"""Planning a batch in the browser, and starting or cancelling it: the line engineer's side of a
production order. Everything goes through batches.services, as the API does."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.db.models import DecimalField, QuerySet, Sum, Value
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from django.views.decorators.http import require_POST

from batches.models import Batch, MaterialLot, MaterialRole
from batches.services import cancel_batch, create_batch, start_batch
from core import roles
from core.errors import DomainError
from dashboard.forms import ReasonForm
from dashboard.views.common import act
from lines.models import CellDesign, Line, Route, Station
from lines.selectors import version_in_force


class LotChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, lot: MaterialLot) -> str:
        left = lot.quantity - lot.used
        return _("%(lot)s · %(material)s · %(left)s %(unit)s left") % {
            "lot": lot.code,
            "material": lot.material,
            "left": f"{left.normalize():f}",
            "unit": lot.unit,
        }


class BatchPlanForm(forms.Form):
    line = forms.ModelChoiceField(Line.objects.all(), to_field_name="code", label=_lazy("Line"))
    design = forms.ModelChoiceField(
        CellDesign.objects.all(), to_field_name="code", label=_lazy("Design")
    )
    route = forms.ModelChoiceField(
        Route.objects.select_related("line"), to_field_name="pk", label=_lazy("Route")
    )
    quantity = forms.IntegerField(min_value=1, max_value=10000, label=_lazy("Quantity"))

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["route"].label_from_instance = lambda r: f"{r.line.code} · {r.name}"
        for role, label in MaterialRole.choices:
            self.fields[f"lot_{role}"] = LotChoiceField(
                _lots_with_use(role), to_field_name="code", required=False, label=label
            )

    def clean(self) -> dict:
        data = super().clean()
        line, route = data.get("line"), data.get("route")
        if line and route and route.line_id != line.pk:
            self.add_error(
                "route",
                _("Route %(route)s is not a route of line %(line)s.")
                % {"route": route.code, "line": line.code},
            )
        return data

    def material_lots(self) -> dict[str, str]:
        return {
            role: self.cleaned_data[f"lot_{role}"].code
            for role in MaterialRole.values
            if self.cleaned_data.get(f"lot_{role}")
        }

    def lot_fields(self) -> list:
        return [self[f"lot_{role}"] for role in MaterialRole.values]


def _lots_with_use(role: str) -> QuerySet[MaterialLot]:
    """Lots of `role` a batch may plan on (released, not expired), with what cells consumed of
    each (`used`, in the lot's unit)."""
    zero = Value(0, output_field=DecimalField(max_digits=18, decimal_places=6))
    return (
        MaterialLot.objects.filter(role=role, status=MaterialLot.Status.RELEASED)
        .exclude(expires_at__lte=timezone.now())
        .annotate(used=Coalesce(Sum("consumptions__quantity"), zero))
        .order_by("received_at", "code")
    )


@roles.page_permission(roles.CREATE_BATCH)
def batch_new(request: HttpRequest) -> HttpResponse:
    """The form to plan a batch; planned, the batch's own page says what happens next."""
    form = BatchPlanForm(request.POST or None, initial={"line": request.GET.get("line")})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            batch = create_batch(
                line=data["line"],
                design=data["design"],
                route=data["route"],
                quantity=data["quantity"],
                material_lots=form.material_lots(),
                by=request.user,
            )
        except DomainError as refused:
            form.add_error(None, refused.detail)
        else:
            messages.success(
                request,
                _("Batch %(batch)s planned: %(cells)s cells.")
                % {"batch": batch.code, "cells": batch.planned_quantity},
            )
            return redirect("batch", batch.code)
    return render(request, "batches/batch_new.html", {"form": form})


@roles.page_permission(roles.CREATE_BATCH)
@require_POST
def batch_start(request: HttpRequest, code: str) -> HttpResponse:
    batch = get_object_or_404(Batch, code=code)
    return act(
        request,
        forms.Form(request.POST),
        lambda _: start_batch(batch, by=request.user),
        _("Batch %(batch)s started: its cells may be tracked in at the first step.")
        % {"batch": batch.code},
        reverse("batch", args=[batch.code]),
    )


@roles.page_permission(roles.CREATE_BATCH)
@require_POST
def batch_cancel(request: HttpRequest, code: str) -> HttpResponse:
    batch = get_object_or_404(Batch, code=code)
    return act(
        request,
        ReasonForm(request.POST),
        lambda data: cancel_batch(batch, by=request.user, reason=data["reason"]),
        _("Batch %(batch)s cancelled; its cells will not be made.") % {"batch": batch.code},
        reverse("batch", args=[batch.code]),
    )


@roles.page_permission(roles.VIEW_BATCHES)
def batch_traveller(request: HttpRequest, code: str) -> HttpResponse:
    """The batch's route card, printed to go with its cells: what to make, the lots planned,
    each step with its stations and the recipe version in force for the design, and a line per
    step for who did it and when."""
    batch = get_object_or_404(
        Batch.objects.select_related("line", "design", "route", "created_by"), code=code
    )
    stations = list(Station.objects.filter(line=batch.line).order_by("code"))
    steps = []
    for step in batch.route.steps.order_by("position"):
        steps.append(
            {
                "step": step,
                "stations": [s.code for s in stations if s.kind == step.station_kind],
                "recipe": version_in_force(batch.line_id, step.station_kind, batch.design_id),
            }
        )
    cells = batch.cells.order_by("position").values_list("serial", flat=True)
    return render(
        request,
        "batches/traveller.html",
        {
            "batch": batch,
            "steps": steps,
            "planned": batch.planned_materials.select_related("lot").order_by("role"),
            "first_serial": cells.first(),
            "last_serial": cells.last(),
        },
    )
