"""Sending inbox rows to the workers: when (on commit), in what chunks, on which queue, and
how a stream of small requests shares one wake-up task per line.

The task is sent by its registered name, so this module and the worker that enqueues follow-ups
(retries, wake-ups) need not import the tasks module that calls them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import transaction

from stations.models import InboxEntry

logger = logging.getLogger(__name__)

PROCESS_INBOX = "stations.tasks.process_inbox"


def queue_for_line(line_code: str) -> str | None:
    """A queue per line (so one line's burst never starves another), when the deployment runs a
    worker per line queue; otherwise Celery's default queue."""
    return f"ingest-{line_code}" if settings.INGEST_QUEUE_PER_LINE else None


# Rows of a request below which they share a wake-up task rather than get one of their own (a
# larger request's task is worth its cost, and runs beside the others).
SMALL_REQUEST = 25


def enqueue(
    entry_ids: Iterable[int],
    *,
    line_code: str,
    countdown: float | None = None,
    coalesce: bool = False,
) -> None:
    """Enqueue processing of inbox rows once the current transaction commits (never before: a
    worker must find the rows).

    With `coalesce` (the intake's requests), a small request's rows are not sent when a wake-up
    task for the line is queued already and has not started: that task takes them along. A
    stream of single results then costs one task per worker round, not one per result.
    """
    ids = list(entry_ids)
    if not ids:
        return
    chunk = settings.INGEST_TASK_CHUNK

    def send() -> None:
        for start in range(0, len(ids), chunk):
            part = ids[start : start + chunk]
            wake = coalesce and len(part) < SMALL_REQUEST
            if wake and not wake_ups.claim(line_code):
                continue
            if not _publish(part, line_code=line_code, countdown=countdown, wake=wake):
                return

    transaction.on_commit(send)


def enqueue_per_line(entries: Sequence[InboxEntry], *, countdown: float | None = None) -> None:
    """enqueue() for inbox rows of several lines (their stations loaded): each line's to its own."""
    for line_code in {e.station.line.code for e in entries}:
        enqueue(
            [e.pk for e in entries if e.station.line.code == line_code],
            line_code=line_code,
            countdown=countdown,
        )


def wake_up(line_code: str) -> None:
    """Once the current transaction commits: a task that takes along the line's fresh rows,
    unless one is queued already."""

    def send() -> None:
        if wake_ups.claim(line_code):
            _publish([], line_code=line_code, countdown=None, wake=True)

    transaction.on_commit(send)


def _publish(ids: list[int], *, line_code: str, countdown: float | None, wake: bool) -> bool:
    try:
        current_app.signature(PROCESS_INBOX).apply_async(
            args=[ids],
            kwargs={"line_code": line_code} if wake else {},
            queue=queue_for_line(line_code),
            countdown=settings.INGEST_WAKE_UP_DELAY_MS / 1000 if wake else countdown,
            retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.5},
        )
    except Exception:  # the broker is down: the rows are stored, the sweep enqueues them
        logger.warning("Broker unavailable; %d inbox rows left for the sweep", len(ids))
        if wake:
            wake_ups.started(line_code)
        return False
    return True


class WakeUps:
    """One queued wake-up task per line at a time, marked by a Redis key beside the broker's
    queues (SET NX). The intake checks the mark after its rows are committed and the task clears
    it before it looks for pending rows, so a row is either seen by a queued task or enqueues a
    task of its own. The mark expires by itself, so a lost task costs a few seconds, then the
    next request sends a new one (and the sweep remains). Without Redis (the filesystem broker)
    every request sends its task.
    """

    TTL_MS = 10_000

    def __init__(self) -> None:
        self._client: Any = None

    def _redis(self) -> Any:
        url = settings.CELERY_BROKER_URL
        if not url.startswith("redis://"):
            return None
        if self._client is None:
            import redis

            self._client = redis.Redis.from_url(url, socket_timeout=1)
        return self._client

    def _key(self, line_code: str) -> str:
        return f"mes:ingest-wake-up:{settings.CELERY_TASK_DEFAULT_QUEUE}:{line_code}"

    def claim(self, line_code: str) -> bool:
        """True if the caller is to send the line's wake-up task (none is queued)."""
        client = self._redis()
        if client is None:
            return True
        try:
            return bool(client.set(self._key(line_code), 1, nx=True, px=self.TTL_MS))
        except Exception:  # Redis unreachable: send, as without the mark
            return True

    def started(self, line_code: str) -> None:
        """The line's wake-up task runs (or was never sent): the next rows need a new one."""
        client = self._redis()
        if client is None:
            return
        try:
            client.delete(self._key(line_code))
        except Exception:  # the mark expires by itself
            logger.warning("Could not clear the wake-up mark of line %s", line_code)


wake_ups = WakeUps()
