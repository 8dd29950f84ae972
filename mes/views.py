from __future__ import annotations

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from batches import selectors
from batches.energy import TARGET_AFTER, TARGET_FY2028, cost_trends, pooled
from mes import roles

HOME_REFRESH_S = 10


def health(request: HttpRequest) -> JsonResponse:
    """Liveness and database reachability, for the container health check and load balancers."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


def ingestion_health(request: HttpRequest) -> JsonResponse:
    """For monitoring: 200 while the workers keep up with the stations, 503 once a result has
    waited over INGEST_BEHIND_AFTER_SECONDS (workers or broker stopped); counts and ages only."""
    backlog = selectors.ingestion_backlog()
    age = backlog.oldest_age_s()
    return JsonResponse(
        {
            "status": "behind" if backlog.behind else "ok",
            "pending": backlog.pending,
            "oldest_pending_s": None if age is None else round(age, 1),
            "behind_after_s": settings.INGEST_BEHIND_AFTER_SECONDS,
        },
        status=503 if backlog.behind else 200,
    )


def _home_context() -> dict:
    summaries = selectors.line_summaries()
    trends = cost_trends(summary.line for summary in summaries)
    panels = []
    for summary in summaries:
        trend = trends[summary.line.pk]
        recent = pooled(economics for _, economics in trend)
        panels.append((summary, {"recent": recent, "batches": len(trend), "last": trend[-1:]}))
    return {
        "panels": panels,
        "targets": (TARGET_FY2028, TARGET_AFTER),
        "refresh": HOME_REFRESH_S,
    }


@roles.page_permission(roles.VIEW_LINES)
def home(request: HttpRequest) -> HttpResponse:
    """Both lines side by side: today's and this week's figures, open holds, stations down."""
    return render(request, "home.html", _home_context())


@roles.page_permission(roles.VIEW_LINES)
def home_lines(request: HttpRequest) -> HttpResponse:
    return render(request, "_home_lines.html", _home_context())
