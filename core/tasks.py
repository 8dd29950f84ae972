"""Beat's partition maintenance (core/partitions.py): each run does what is left, so a missed or
repeated run changes nothing."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from core import partitions

logger = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def make_partitions() -> dict[str, int]:
    created = partitions.ensure_partitions(settings.PARTITION_MONTHS_AHEAD)
    if any(created.values()):
        logger.info("Partitions made: %s", created)
    return created


@shared_task(ignore_result=True)
def archive_inbox() -> int:
    moved = partitions.archive_inbox(settings.INBOX_RETENTION_DAYS)
    if moved:
        logger.info("Processed inbox rows archived: %s", moved)
    return moved
