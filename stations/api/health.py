from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, JsonResponse

from stations import selectors


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
