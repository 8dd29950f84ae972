"""Thin Celery tasks: take inbox ids, call the worker or the sweep, own the retries."""

from __future__ import annotations

from celery import shared_task
from django.db import InterfaceError, OperationalError, close_old_connections

from stations.dispatch import wake_ups
from stations.sweep import sweep_pending
from stations.worker import process_entries


# acks_late + reject_on_worker_lost (settings): a task whose worker dies is delivered again; the
# worker skips rows already done, so a second delivery changes nothing.
@shared_task(
    autoretry_for=(OperationalError, InterfaceError),  # the database went away mid-task
    retry_backoff=1,
    retry_backoff_max=30,
    max_retries=None,
)
def process_inbox(entry_ids: list[int], line_code: str | None = None) -> dict[str, int]:
    close_old_connections()  # connections are reused across tasks (CELERY_DB_REUSE_MAX)
    if line_code is not None:
        # A wake-up task: from now on the intake sends a new one for rows it does not see.
        wake_ups.started(line_code)
    return process_entries(entry_ids, line_code=line_code)


@shared_task
def sweep_inbox() -> int:
    """Periodic (beat): re-enqueue inbox rows left pending too long."""
    close_old_connections()
    return sweep_pending()
