"""Quality figures' pages: first-pass yield per step, batch, day or line, and the defect Pareto,
over the results the filters select (the same filters as the API and the exports)."""

from __future__ import annotations

from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from analytics.exports import FORMATS
from core import roles
from lines.models import CellDesign, Station, StationKind
from quality.pareto import KINDS, pareto
from quality.selection import Selection
from quality.yields import BY, yield_report

# The groupings the pages offer, with their labels; the first is the default.
_BY_LABELS = {"step": _("Step"), "batch": _("Batch"), "day": _("Day"), "line": _("Line")}
YIELD_BY = {by: _BY_LABELS.get(by, by.capitalize()) for by in BY}
PARETO_BY = {by: _("Violated parameter") if by == "parameter" else _("Defect code") for by in KINDS}


def _filters(request: HttpRequest, by: dict[str, str]) -> dict:
    """The filters asked for: the selection (None and the errors if a filter is bad), the
    grouping, what the filters form offers, and the links that keep the filters."""
    query = request.GET
    selection, errors = Selection.from_query(query)
    chosen = query.get("by") or next(iter(by))
    if chosen not in by:
        errors = {**errors, "by": [_("Must be one of: %(choices)s.") % {"choices": ", ".join(by)}]}
        selection = None
    filters = selection.as_query() if selection else {}
    kept = urlencode(filters)
    export = reverse("api-export-measurements")
    return {
        "selection": selection,
        "errors": errors,
        "by": chosen,
        "by_choices": by,
        "values": _form_values(query, selection),
        "steps": StationKind.choices,
        "stations": Station.objects.order_by("line__code", "code").only("code"),
        "designs": CellDesign.objects.order_by("code").only("code"),
        "kept": kept,
        "downloads": [
            (name, f"{export}?{urlencode({'format': name, **filters})}") for name in FORMATS
        ],
    }


def _form_values(query: QueryDict, selection: Selection | None) -> dict[str, str]:
    """The form's values as asked, the times as a datetime-local input shows them (plant time)."""
    values = query.dict()
    for name in ("since", "until"):
        at = getattr(selection, name, None)
        if at is not None:
            values[name] = timezone.localtime(at).strftime("%Y-%m-%dT%H:%M:%S")
    return values


@roles.page_permission(roles.VIEW_CELLS)
def yield_page(request: HttpRequest) -> HttpResponse:
    context = _filters(request, YIELD_BY)
    report = yield_report(context["selection"], by=context["by"]) if context["selection"] else None
    chart = (
        {
            "labels": [row.key for row in report.rows],
            "fpy": [None if row.fpy is None else round(100 * row.fpy, 2) for row in report.rows],
        }
        if report
        else None
    )
    return render(request, "quality/yield.html", {**context, "report": report, "chart": chart})


@roles.page_permission(roles.VIEW_CELLS)
def pareto_page(request: HttpRequest) -> HttpResponse:
    context = _filters(request, PARETO_BY)
    rows = pareto(context["selection"], context["by"]) if context["selection"] else None
    chart = (
        {
            "labels": [row.key for row in rows],
            "counts": [row.count for row in rows],
            "cumulative": [round(100 * row.cumulative_share, 2) for row in rows],
        }
        if rows is not None
        else None
    )
    total = sum(row.count for row in rows) if rows else 0
    return render(
        request,
        "quality/pareto.html",
        {**context, "rows": rows, "total": total, "chart": chart},
    )
