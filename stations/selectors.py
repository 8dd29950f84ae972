"""Reads of the station intake: results not (yet) applied, and whether the workers keep up."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, Exists, Min, OuterRef, QuerySet
from django.utils import timezone

from batches.models import Cell
from lines.models import Station
from stations.models import ArchivedInboxEntry, InboxEntry, InboxKey, PendingReason

# ---------------------------------------------------------------- station results not applied

# The two lists of station results the record does not (yet) hold.
UNAPPLIED = {"rejected": "Rejected", "pending": "Waiting"}
# The reasons of rejected results are counted over this many days (the list itself goes back
# to the first one).
REJECTED_REASONS_DAYS = 7


def unapplied_results(
    *, state: str = "rejected", line: str = "", station: str = "", reason: str = ""
) -> QuerySet[InboxEntry]:
    """Station results the workers rejected (newest first), or those still pending (oldest
    first): waiting for an earlier step's result, retrying after a database error, or queued.

    Without their payloads (a pressing result carries its curves) and times (an older release
    stored some Python cannot read, and such a row is listed rejected as `unreadable`);
    `cell_exists` says whether the serial names a cell (an unknown one is a reason to reject)."""
    entries = (
        _unapplied(state, line=line, station=station, reason=reason)
        .select_related("station__line")
        .defer("payload", "violations", "occurred_at")
        .annotate(cell_exists=Exists(Cell.objects.filter(serial=OuterRef("cell_serial"))))
    )
    if state == "pending":
        return entries.order_by("received_at", "id")
    return entries.order_by("-processed_at", "-id")


def unapplied_reasons(
    *, state: str = "rejected", line: str = "", station: str = ""
) -> list[tuple[str, int]]:
    """(reason code, results) of the list, most frequent first; rejected ones of the last
    REJECTED_REASONS_DAYS days only (the partial index's range, however long the history)."""
    entries = _unapplied(state, line=line, station=station)
    if state != "pending":
        since = timezone.now() - timedelta(days=REJECTED_REASONS_DAYS)
        entries = entries.filter(processed_at__gte=since)
    counts = (
        entries.values_list("reason_code").annotate(n=Count("id")).order_by("-n", "reason_code")
    )
    return list(counts)


@dataclass(frozen=True)
class IngestionBacklog:
    """Accepted results not applied yet, leaving out those waiting for an earlier step's result
    (they may rightly wait for hours). The workers apply a result within a second or so; one
    older than settings.INGEST_BEHIND_AFTER_SECONDS means they, or the broker, have stopped, and
    every figure on the dashboard is behind."""

    pending: int
    oldest: datetime | None

    def oldest_age_s(self) -> float | None:
        if self.oldest is None:
            return None
        return (timezone.now() - self.oldest).total_seconds()

    @property
    def behind(self) -> bool:
        age = self.oldest_age_s()
        return age is not None and age > settings.INGEST_BEHIND_AFTER_SECONDS


def ingestion_backlog() -> IngestionBacklog:
    row = (
        InboxEntry.objects.filter(status=InboxEntry.Status.PENDING)
        .exclude(reason_code=PendingReason.WAITING)
        .aggregate(pending=Count("id"), oldest=Min("received_at"))
    )
    return IngestionBacklog(pending=row["pending"], oldest=row["oldest"])


def _unapplied(state: str, *, line: str, station: str, reason: str = "") -> QuerySet[InboxEntry]:
    status = InboxEntry.Status.PENDING if state == "pending" else InboxEntry.Status.REJECTED
    entries = InboxEntry.objects.filter(status=status)
    if line:
        entries = entries.filter(station__line__code=line)
    if station:
        entries = entries.filter(station__code=station)
    if reason:
        entries = entries.filter(reason_code=reason)
    return entries


# ---------------------------------------------------------------- one station event


def find_entry(
    station: Station, event_id: str, fields: Sequence[str]
) -> InboxEntry | ArchivedInboxEntry | None:
    """A station's event as stored: its inbox row, or the archived one once it was processed
    long ago (INBOX_RETENTION_DAYS); None if the station never sent it. Found through its
    idempotency key, whose time names the month: one partition is read, not every month's."""
    received_at = (
        InboxKey.objects.filter(station=station, event_id=event_id)
        .values_list("received_at", flat=True)
        .first()
    )
    if received_at is None:
        return None
    for model in (InboxEntry, ArchivedInboxEntry):
        entry = (
            model.objects.filter(station=station, event_id=event_id, received_at=received_at)
            .only(*fields)
            .first()
        )
        if entry is not None:
            return entry
    return None
