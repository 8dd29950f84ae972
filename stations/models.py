"""What stations send and how they are known: their API tokens and the inbox of their messages."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from batches.models import ProcessRun
from lines.models import Station


class StationToken(models.Model):
    """A station's API credential, stored only as a SHA-256 hash; revocable."""

    station = models.ForeignKey(Station, on_delete=models.CASCADE, related_name="tokens")
    key_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=8, help_text="First characters, to tell tokens apart")
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "lines_stationtoken"  # the table it was created with
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.station.code} {self.prefix}…"


class PendingReason(models.TextChoices):
    """Why an inbox row is still pending, in its reason_code ("" until a task has seen it)."""

    WAITING = "waiting", "Waiting for the result of an earlier step"
    RETRYING = "retrying", "Retrying after a database error"


class InboxEntry(models.Model):
    """One station message as received (a result or a cycler file), stored before the 202 reply.

    The inbox is the durable queue of record: the broker only carries ids, so a lost task is found
    again by the sweep, and (station, event_id) makes a repeated message a no-op.
    """

    class Kind(models.TextChoices):
        RESULT = "result", _("Station result")
        CYCLER_FILE = "cycler_file", _("Cycler file")

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        PROCESSED = "processed", _("Processed")
        REJECTED = "rejected", _("Rejected")

    # No index of its own: the (station, event_id) unique constraint leads with it.
    station = models.ForeignKey(
        Station, on_delete=models.PROTECT, related_name="inbox", db_index=False
    )
    event_id = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.RESULT)
    cell_serial = models.CharField(max_length=50)
    occurred_at = models.DateTimeField(null=True, blank=True)
    content_hash = models.CharField(max_length=64, help_text="sha256 of the canonical content")
    payload = models.JSONField(help_text="The message as validated (canonical JSON)")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    reason_code = models.CharField(max_length=40, blank=True)
    reason = models.TextField(blank=True)
    outcome = models.CharField(max_length=10, choices=ProcessRun.Verdict.choices, blank=True)
    violations = models.JSONField(default=list, blank=True)
    run = models.ForeignKey(
        ProcessRun, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    attempts = models.PositiveIntegerField(default=0)
    received_at = models.DateTimeField()
    enqueued_at = models.DateTimeField(help_text="Last time a task for this row was enqueued")
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        # Partitioned by the month of received_at (core/partitions.py); in the database the
        # primary key is (id, received_at). The idempotency key of the station API is kept
        # across every month, and after archiving, by InboxKey.
        db_table = "batches_inboxentry"  # the table and index names it was created with
        ordering = ["received_at", "id"]
        verbose_name_plural = "inbox entries"
        constraints = [
            models.CheckConstraint(
                condition=Q(status="pending", processed_at__isnull=True)
                | Q(status__in=["processed", "rejected"], processed_at__isnull=False),
                name="batches_inboxentry_processed_has_time",
            ),
        ]
        indexes = [
            # One station's event (the result status, requeueing by event id).
            models.Index(fields=["station", "event_id"], name="batches_inbox_event_idx"),
            # The sweep: WHERE status='pending' AND enqueued_at < ..
            models.Index(
                fields=["enqueued_at"],
                condition=Q(status="pending"),
                name="batches_inbox_pending_idx",
            ),
            # Results waiting for an earlier step, looked up by the task that moves their cells.
            # Only rows found waiting: a fresh row's own task applies it, and the index stays
            # small (a processed row's entry lingers until VACUUM, so a broader one grows).
            models.Index(
                fields=["cell_serial"],
                condition=Q(status="pending", reason_code=PendingReason.WAITING),
                name="batches_inbox_waiting_cell_idx",
            ),
            # Fresh rows a task takes along, oldest first. Scanned in id order, so the entries
            # of rows processed since (left until VACUUM) are marked dead on the first pass and
            # skipped after; a bitmap scan through the station or the pending index would read
            # them all again at every wake-up.
            models.Index(
                fields=["id"],
                condition=Q(status="pending", reason_code=""),
                name="batches_inbox_fresh_idx",
            ),
            # Rejected results, newest first (the engineers' list of results not applied). Few
            # rows: a processed row never enters it.
            models.Index(
                fields=["-processed_at", "-id"],
                condition=Q(status="rejected"),
                name="batches_inbox_rejected_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.station_id}:{self.event_id} {self.status}"


class InboxKey(models.Model):
    """Each event id a station sent, once: the idempotency key of the station API.

    The inbox is partitioned by month and PostgreSQL enforces a unique key per partition only,
    so the key lives here, unpartitioned, written by the same statement as the inbox row
    (stations.intake) and never archived: an event sent again a year later is still a repeat.
    """

    pk = models.CompositePrimaryKey("station", "event_id")
    # No index of its own: the primary key leads with it.
    station = models.ForeignKey(Station, on_delete=models.PROTECT, related_name="+", db_index=False)
    event_id = models.CharField(max_length=200)
    # What a repeat is compared with, whether its inbox row is still there or archived.
    content_hash = models.CharField(max_length=64)
    # Its inbox row's: the partition to look in.
    received_at = models.DateTimeField()

    class Meta:
        db_table = "stations_inboxkey"

    def __str__(self) -> str:
        return f"{self.station_id}:{self.event_id}"


class ArchivedInboxEntry(models.Model):
    """A processed inbox row older than settings.INBOX_RETENTION_DAYS, moved out of the inbox
    (core.partitions.archive_inbox) with every column it had: the station's receipt, kept, and
    the inbox's partial indexes and scans rid of it. Partitioned by month as the inbox is."""

    id = models.BigIntegerField(primary_key=True)  # the inbox row's; (id, received_at) in the DB
    station = models.ForeignKey(Station, on_delete=models.PROTECT, related_name="+", db_index=False)
    event_id = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=InboxEntry.Kind.choices)
    cell_serial = models.CharField(max_length=50)
    occurred_at = models.DateTimeField(null=True, blank=True)
    content_hash = models.CharField(max_length=64)
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=InboxEntry.Status.choices)
    reason_code = models.CharField(max_length=40, blank=True)
    reason = models.TextField(blank=True)
    outcome = models.CharField(max_length=10, choices=ProcessRun.Verdict.choices, blank=True)
    violations = models.JSONField(default=list, blank=True)
    run = models.ForeignKey(
        ProcessRun,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,  # runs are never deleted: nothing looks an archived row up by its run
    )
    attempts = models.PositiveIntegerField(default=0)
    received_at = models.DateTimeField()
    enqueued_at = models.DateTimeField()
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "stations_inboxarchive"
        ordering = ["received_at", "id"]
        verbose_name_plural = "archived inbox entries"
        indexes = [
            # The result status of an archived event.
            models.Index(fields=["station", "event_id"], name="stations_archive_event_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.station_id}:{self.event_id} archived"
