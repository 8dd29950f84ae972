"""Thin Celery tasks of the record: a disposition of many cells, carried out by a worker."""

from __future__ import annotations

from celery import shared_task
from django.db import InterfaceError, OperationalError, close_old_connections

from batches import services
from batches.services import close_requested_hold


@shared_task(
    autoretry_for=(OperationalError, InterfaceError),  # the database went away: try again
    retry_backoff=1,
    retry_backoff_max=30,
    max_retries=None,
)
def close_hold(hold_id: int) -> bool:
    """Close a hold as request_release asked; True if it closed it now."""
    close_old_connections()
    return close_requested_hold(hold_id) is not None


@shared_task(ignore_result=True)
def compact_lot_consumer_counts() -> int:
    """Beat's: fold each lot's consumer-count rows into one, so a lot's counts stay a sum of a
    row or a few. A missed or repeated run changes no count."""
    return services.compact_lot_consumer_counts()


@shared_task(ignore_result=True)
def compact_batch_step_counts() -> int:
    """Beat's: fold each batch's count rows of a step into one, so a batch's progress stays a
    sum of a row or a few per step. A missed or repeated run changes no count."""
    return services.compact_batch_step_counts()
