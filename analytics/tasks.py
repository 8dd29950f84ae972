"""Thin Celery tasks of the analytics: building a batch's passport export."""

from __future__ import annotations

from celery import shared_task
from django.db import InterfaceError, OperationalError, close_old_connections

from analytics.passport_exports import build_export


@shared_task(
    autoretry_for=(OperationalError, InterfaceError),  # the database went away: try again
    retry_backoff=1,
    retry_backoff_max=30,
    max_retries=None,
)
def build_passport_export(export_id: int) -> bool:
    """Build a requested passport export; True if it is ready now."""
    close_old_connections()
    return build_export(export_id) is not None
