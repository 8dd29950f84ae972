"""The equipment registry's pages: every registered item (filtered by kind and status, calibration
due soon highlighted), one item with its history, and engineers' lockouts and calibrations."""

from __future__ import annotations

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from analytics.equipment import DUE_SOON_DAYS, calibration_standing, item_history, registry_items
from core import roles
from dashboard.forms import ReasonForm
from dashboard.views.common import act, page_of, query_without_page
from lines import equipment as services
from lines.models import Equipment, Line
from lines.performance import calendar_spec

ACTIONS = {
    "lock_out": services.lock_out,
    "return": services.return_to_service,
    "retire": services.retire,
}


class StatusForm(ReasonForm):
    action = forms.ChoiceField(choices=[(name, name) for name in ACTIONS])


class CalibrationForm(forms.Form):
    due = forms.DateField()
    note = forms.CharField(max_length=200, required=False, strip=True)


def _within(request: HttpRequest) -> int:
    try:
        return max(0, min(int(request.GET.get("within", DUE_SOON_DAYS)), 3650))
    except ValueError:
        return DUE_SOON_DAYS


@roles.page_permission(roles.VIEW_EQUIPMENT)
def equipment_list(request: HttpRequest) -> HttpResponse:
    kind = request.GET.get("kind", "")
    status = request.GET.get("status", "")
    line = request.GET.get("line", "")
    within = _within(request)
    due_only = request.GET.get("due") == "1"
    items = registry_items(
        kind=kind if kind in Equipment.Kind.values else "",
        status=status if status in Equipment.Status.values else "",
        line=line,
        due_within=within if due_only else None,
    )
    page = page_of(request, items)
    rows = [(item, calibration_standing(item.calibration_due, within=within)) for item in page]
    return render(
        request,
        "equipment/list.html",
        {
            "page": page,
            "rows": rows,
            "kinds": Equipment.Kind.choices,
            "statuses": Equipment.Status.choices,
            "lines": Line.objects.all(),
            "filters": {"kind": kind, "status": status, "line": line, "due": due_only},
            "within": within,
            "query": query_without_page(request),
        },
    )


@roles.page_permission(roles.VIEW_EQUIPMENT)
def equipment_detail(request: HttpRequest, code: str) -> HttpResponse:
    item = get_object_or_404(Equipment.objects.select_related("station__line", "parent"), code=code)
    return render(
        request,
        "equipment/detail.html",
        {
            "item": item,
            "zone": calendar_spec(item.station.line).time_zone,
            "children": list(item.children.order_by("code")),
            "history": item_history(item),
            "standing": calibration_standing(item.calibration_due),
            "actions": [
                name
                for name, target in (
                    ("lock_out", Equipment.Status.LOCKED_OUT),
                    ("return", Equipment.Status.IN_SERVICE),
                    ("retire", Equipment.Status.RETIRED),
                )
                if target in Equipment.TRANSITIONS[item.status]
            ],
        },
    )


@roles.page_permission(roles.LOCK_OUT_EQUIPMENT)
@require_POST
def equipment_status(request: HttpRequest, code: str) -> HttpResponse:
    item = get_object_or_404(Equipment, code=code)
    return act(
        request,
        StatusForm(request.POST),
        lambda data: ACTIONS[data["action"]](item, by=request.user, reason=data["reason"]),
        lambda changed: (
            _("%(item)s is now %(status)s.")
            % {"item": changed.code, "status": changed.get_status_display().lower()}
        ),
        reverse("equipment", args=[item.code]),
    )


@roles.page_permission(roles.LOCK_OUT_EQUIPMENT)
@require_POST
def equipment_calibration(request: HttpRequest, code: str) -> HttpResponse:
    item = get_object_or_404(Equipment, code=code)
    return act(
        request,
        CalibrationForm(request.POST),
        lambda data: services.record_calibration(
            item, due=data["due"], by=request.user, note=data["note"]
        ),
        lambda calibration: (
            _("%(item)s calibrated; next due %(due)s.")
            % {"item": item.code, "due": f"{calibration.due:%Y-%m-%d}"}
        ),
        reverse("equipment", args=[item.code]),
    )
