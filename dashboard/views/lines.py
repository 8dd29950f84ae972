"""The home page (both lines), the line view and the recipes. The live parts are htmx fragments
that the page re-fetches every few seconds; each fragment is its own view with the same permission."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from analytics import selectors as figures
from analytics.energy import cost_targets, cost_trend, cost_trends, pooled
from analytics.oee import today_oee
from batches import selectors
from core import roles
from environment.selectors import zone_states
from lines.models import Line
from lines.selectors import recipe_histories

# How often the live parts refresh, in seconds (the page's hx-trigger).
HOME_REFRESH_S = 10
STATIONS_REFRESH_S = 3
BATCHES_REFRESH_S = 5
HOLDS_PER_LINE_SHOWN = 30


def _home_context() -> dict:
    summaries = figures.line_summaries()
    trends = cost_trends(summary.line for summary in summaries)
    panels = []
    for summary in summaries:
        trend = trends[summary.line.pk]
        recent = pooled((economics for _, economics in trend), summary.line.currency)
        panels.append(
            (
                summary,
                {
                    "recent": recent,
                    "batches": len(trend),
                    "last": trend[-1:],
                    "targets": cost_targets(summary.line.currency),
                },
            )
        )
    return {
        "panels": panels,
        "refresh": HOME_REFRESH_S,
    }


@roles.page_permission(roles.VIEW_LINES)
def home(request: HttpRequest) -> HttpResponse:
    """Both lines side by side: today's and this week's figures, open holds, stations down."""
    return render(request, "home.html", _home_context())


@roles.page_permission(roles.VIEW_LINES)
def home_lines(request: HttpRequest) -> HttpResponse:
    return render(request, "_home_lines.html", _home_context())


def _line(code: str) -> Line:
    return get_object_or_404(Line, code=code)


def _stations_context(line: Line) -> dict:
    flow = figures.wip_by_station(line)
    today_oee([st.station for step in flow for st in step.stations])
    return {"line": line, "flow": flow, "refresh": STATIONS_REFRESH_S}


def _batches_context(line: Line) -> dict:
    return {
        "line": line,
        "batches": selectors.batches_in_progress(line),
        "refresh": BATCHES_REFRESH_S,
    }


def _holds_context(line: Line) -> dict:
    holds = list(selectors.open_holds(line=line)[: HOLDS_PER_LINE_SHOWN + 1])
    return {
        "line": line,
        "holds": holds[:HOLDS_PER_LINE_SHOWN],
        "more_holds": len(holds) > HOLDS_PER_LINE_SHOWN,
        "refresh": BATCHES_REFRESH_S,
    }


@roles.page_permission(roles.VIEW_LINES)
def line_detail(request: HttpRequest, code: str) -> HttpResponse:
    """The line: its stations, batches in progress and open holds are the live fragments below,
    which the page fetches as it loads (side by side, each as soon as it is ready) and again
    every few seconds; the costs and dry rooms come with the page."""
    line = _line(code)
    context = {
        "line": line,
        "lines": Line.objects.all(),
        "cost_trend": cost_trend(line),
        "targets": cost_targets(line.currency),
        "zones": zone_states(line),
    }
    return render(request, "lines/line_detail.html", context)


@roles.page_permission(roles.VIEW_LINES)
def line_stations(request: HttpRequest, code: str) -> HttpResponse:
    return render(request, "lines/_stations.html", _stations_context(_line(code)))


@roles.page_permission(roles.VIEW_LINES)
def line_batches(request: HttpRequest, code: str) -> HttpResponse:
    return render(request, "lines/_batches.html", _batches_context(_line(code)))


@roles.page_permission(roles.VIEW_LINES)
def line_holds(request: HttpRequest, code: str) -> HttpResponse:
    return render(request, "lines/_holds.html", _holds_context(_line(code)))


@roles.page_permission(roles.VIEW_RECIPES)
def recipes(request: HttpRequest) -> HttpResponse:
    line = request.GET.get("line", "")
    return render(
        request,
        "lines/recipes.html",
        {
            "histories": recipe_histories(line=line),
            "lines": Line.objects.all(),
            "line_filter": line,
        },
    )
