"""The beat sweep: inbox rows left pending too long are sent to the workers again."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from stations.dispatch import enqueue
from stations.models import InboxEntry

logger = logging.getLogger(__name__)


def sweep_pending(*, older_than: timedelta | None = None, limit: int = 20000) -> int:
    """Re-enqueue rows left pending (the broker lost the task, a worker died); returns how many.
    Rows are re-enqueued at most once per `older_than`, so a long backlog is not enqueued twice
    over; a task that finds a row done already does nothing."""
    if older_than is None:
        older_than = timedelta(seconds=settings.INGEST_PENDING_AFTER_SECONDS)
    kinds = [InboxEntry.Kind.RESULT, InboxEntry.Kind.CYCLER_FILE]
    now = timezone.now()
    with transaction.atomic():
        rows = list(
            InboxEntry.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(
                status=InboxEntry.Status.PENDING, kind__in=kinds, enqueued_at__lt=now - older_than
            )
            .order_by("enqueued_at")
            .values_list("id", "station__line__code")[:limit]
        )
        if not rows:
            return 0
        InboxEntry.objects.filter(id__in=[pk for pk, _ in rows]).update(enqueued_at=now)
        for line_code in {line for _, line in rows}:
            enqueue([pk for pk, line in rows if line == line_code], line_code=line_code)
    logger.info("Sweep re-enqueued %d pending inbox rows", len(rows))
    return len(rows)
