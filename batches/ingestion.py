"""Station data ingestion: the one entry point from station messages to the cell's record.

Intake (`accept_results`, `accept_cycler_file`) stores every message in the inbox
(batches.InboxEntry) inside the request's transaction and enqueues its id on commit; the reply
(202) goes out only once the rows are durable. Workers (`process_entries`, via batches.tasks) apply
the rows with `batches.services.record_steps`, the one place the business rules live, and mark
each row processed or rejected. The broker carries ids only: a lost or repeated task is harmless, the
sweep (`sweep_pending`) re-enqueues rows left pending.

Route order: a result for a step ahead of the cell's next step (pressing before stacking) is not
an error; it stays pending and is applied right after the earlier step's result, in the same
transaction when they are processed together, else by whichever task applies that earlier result
(it re-reads the pending rows of the cells it moved).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from audit.services import record_events
from batches.cycler import CyclerFileRejected
from batches.formation import read_cycler_entry
from batches.messages import StationResultIn
from batches.models import Cell, InboxEntry, PendingReason, ProcessRun
from batches.services import StepContext, StepInput, StepResult, record_steps, require_reason
from lines.models import Station
from mes.bulk import execute_bound, update_rows
from mes.errors import DomainError

logger = logging.getLogger(__name__)


# An unexpected database error (a deadlock with an engineer's hold, a lost connection) leaves the
# row pending for a retry; after this many such retries it is rejected so it cannot loop forever.
MAX_RETRIES_AFTER_ERROR = 10

# Dwell at peak: the time the pressure curve spends at or above this share of its peak.
DWELL_SHARE_OF_PEAK = 0.98


@dataclass(frozen=True)
class Accepted:
    """What the intake did with one request."""

    accepted: int
    duplicates: int
    entry_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class NewEntry:
    event_id: str
    cell_serial: str
    occurred_at: datetime | None
    content_hash: str
    payload: bytes  # canonical JSON


# ---------------------------------------------------------------- intake


def accept_results(station: Station, results: Sequence[StationResultIn]) -> Accepted:
    """Store shape-validated results in the inbox (all or none) and enqueue them on commit.

    A repeat of an event_id with the same content is a duplicate; with different content the
    whole request is refused (409 event_id_reused) and nothing is stored, within the request or
    against what the station sent before.
    """
    entries: dict[str, NewEntry] = {}
    duplicates = 0
    reused: dict[str, Any] = {}
    for index, result in enumerate(results):
        canonical = result.canonical()
        entry = NewEntry(
            event_id=result.event_id,
            cell_serial=result.cell,
            occurred_at=result.occurred_at,
            content_hash=hashlib.sha256(canonical).hexdigest(),
            payload=canonical,
        )
        earlier = entries.get(entry.event_id)
        if earlier is None:
            entries[entry.event_id] = entry
        elif earlier.content_hash == entry.content_hash:
            duplicates += 1
        else:
            reused[str(index)] = {"event_id": ["Sent earlier in this request with other content."]}
    if reused:
        raise _event_id_reused({"results": reused})
    return _store(station, InboxEntry.Kind.RESULT, list(entries.values()), duplicates)


def accept_cycler_file(
    station: Station,
    *,
    event_id: str,
    cell_serial: str,
    file_format: str,
    path: Path,
    sha256: str,
    size: int,
    original_name: str,
) -> Accepted:
    """Store an uploaded cycler file's inbox row; its content is the file's sha256 and fields."""
    content = {"cell": cell_serial, "format": file_format, "sha256": sha256}
    payload = {
        **content,
        "path": str(path.relative_to(settings.MEDIA_ROOT)),
        "size": size,
        "original_name": original_name,
    }
    entry = NewEntry(
        event_id=event_id,
        cell_serial=cell_serial,
        occurred_at=None,
        content_hash=hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest(),
        payload=json.dumps(payload, sort_keys=True).encode(),
    )
    return _store(station, InboxEntry.Kind.CYCLER_FILE, [entry], 0)


def _event_id_reused(errors: dict[str, Any]) -> DomainError:
    return DomainError(
        "event_id_reused",
        "An event_id was sent again with different content; nothing from this request was stored.",
        status=409,
        errors=errors,
    )


_INSERT_SQL = f"""
    INSERT INTO {InboxEntry._meta.db_table}
        (station_id, kind, event_id, cell_serial, occurred_at, content_hash, payload, status,
         reason_code, reason, outcome, violations, attempts, received_at, enqueued_at)
    SELECT %b, %b, e, c, o, h, p::jsonb, 'pending', '', %b, '', '[]'::jsonb, 0, now(), now()
    FROM unnest(%b::text[], %b::text[], %b::timestamptz[], %b::text[], %b::text[])
        AS incoming(e, c, o, h, p)
    ON CONFLICT (station_id, event_id) DO NOTHING
    RETURNING id, event_id
"""


def _store(station: Station, kind: str, entries: list[NewEntry], duplicates: int) -> Accepted:
    # One statement for up to 1000 rows: bulk_create cannot say which rows hit the unique
    # constraint, and a row per INSERT costs a round trip each.
    reason = ""
    with transaction.atomic():
        rows = execute_bound(
            _INSERT_SQL,
            [
                station.pk,
                kind,
                reason,
                [e.event_id for e in entries],
                [e.cell_serial for e in entries],
                [e.occurred_at for e in entries],
                [e.content_hash for e in entries],
                [e.payload.decode() for e in entries],
            ],
        )
        inserted = {event_id: pk for pk, event_id in rows}
        repeated = [e for e in entries if e.event_id not in inserted]
        if repeated:
            stored = dict(
                InboxEntry.objects.filter(
                    station=station, event_id__in=[e.event_id for e in repeated]
                ).values_list("event_id", "content_hash")
            )
            reused = sorted(e.event_id for e in repeated if stored[e.event_id] != e.content_hash)
            if reused:
                # Raising rolls back this request's inserts too: nothing from it is stored.
                raise _event_id_reused({"event_ids": reused})
        ids = tuple(inserted.values())
        enqueue(ids, line_code=station.line.code, coalesce=True)
    return Accepted(accepted=len(ids), duplicates=duplicates + len(repeated), entry_ids=ids)


def requeue_rejected(entry_ids: Iterable[int], *, by: Any, reason: str) -> int:
    """Send rejected results to the workers again, once what rejected them is put right (a hold
    released, a cell's route corrected, the database back): each is applied as if it had just
    arrived, or rejected again with the reason of now. A rejected result changed nothing, so
    this cannot apply anything twice. Rows no longer rejected are left alone; returns how many
    were sent. Recorded in the audit trail with who and why."""
    require_reason(reason)
    with transaction.atomic():
        entries = list(
            InboxEntry.objects.select_for_update(of=("self",))
            .select_related("station__line")
            .filter(id__any=list(entry_ids), status=InboxEntry.Status.REJECTED)
            .defer("payload")
        )
        if not entries:
            return 0
        InboxEntry.objects.filter(id__any=[e.pk for e in entries]).update(
            status=InboxEntry.Status.PENDING,
            reason_code="",
            reason="",
            outcome="",
            violations=[],
            processed_at=None,
            # A fresh retry budget (MAX_RETRIES_AFTER_ERROR); the trail keeps what went before.
            attempts=0,
            enqueued_at=timezone.now(),
        )
        record_events(
            [
                {
                    "actor": by,
                    "verb": "result_requeued",
                    # The event id is unique per station only: the station is in the data.
                    "subject_type": "station_result",
                    "subject": e.event_id,
                    "reason": reason,
                    "data": {
                        "station": e.station.code,
                        "cell": e.cell_serial,
                        "rejected": e.reason_code,
                        "why": e.reason,
                    },
                }
                for e in entries
            ]
        )
        _enqueue_per_line(entries)
    return len(entries)


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


def _enqueue_per_line(entries: Sequence[InboxEntry], *, countdown: float | None = None) -> None:
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
    from batches.tasks import process_inbox

    try:
        process_inbox.apply_async(
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


# ---------------------------------------------------------------- workers


def pressing_features(t_s: Sequence[float], pressure: Sequence[float]) -> dict[str, float]:
    """Peak pressure and dwell at peak from a pressure curve.

    Dwell is the time at or above 98 % of the peak: the sum of the sample intervals whose starting
    sample is at or above that level (a left Riemann sum), so a dip below it during the hold is
    not counted, and ramp and release count only while within 2 % of the peak.
    """
    t = np.asarray(t_s, dtype=float)
    p = np.asarray(pressure, dtype=float)
    if p.size == 0:
        return {}
    peak = float(p.max())
    at_peak = p[:-1] >= DWELL_SHARE_OF_PEAK * peak
    dwell = float(np.diff(t)[at_peak].sum()) if p.size > 1 else 0.0
    return {"peak_pressure_mpa": round(peak, 3), "dwell_s": round(dwell, 3)}


def aging_features(measurements: dict[str, float]) -> dict[str, float]:
    """Self-discharge K from the two OCV checks, in mV/day, positive for a falling voltage:
    K = (OCV1 - OCV2) x 1000 / days, so the recipe's max (0.5 mV/day) rejects a fast drop."""
    try:
        ocv1, ocv2 = measurements["ocv1_v"], measurements["ocv2_v"]
        days = measurements["ocv_interval_days"]
    except KeyError:
        return {}
    if days <= 0:
        return {}
    return {"k_mv_per_day": round((ocv1 - ocv2) * 1000 / days, 4)}


def step_result_of(entry: InboxEntry) -> StepResult:
    """The inbox row's result as record_step takes it, with pressing features derived from the
    pressure curve where the station did not send them."""
    payload = entry.payload
    measurements = dict(payload.get("measurements", {}))
    curves = payload.get("curves", {})
    pressure = curves.get("pressure")
    if entry.station.kind == "pressing" and pressure is not None:
        derived = pressing_features(pressure["t_s"], pressure["values"])
        for name, value in derived.items():
            measurements.setdefault(name, value)
    if entry.station.kind == "aging":
        for name, value in aging_features(measurements).items():
            measurements.setdefault(name, value)
    return StepResult(
        occurred_at=entry.occurred_at,
        measurements=measurements,
        verdict=payload.get("verdict") or "",
        equipment_ref=payload.get("equipment", ""),
        defects=payload.get("defects", []),
        curves=curves,
        material_lots=payload.get("material_lots", {}),
        event_id=entry.event_id,
    )


APPLIED, REJECTED, WAITING, RETRY, SKIPPED = "applied", "rejected", "waiting", "retry", "skipped"


def process_entries(entry_ids: Sequence[int], *, line_code: str | None = None) -> dict[str, int]:
    """Apply pending inbox rows; rows another task holds or that are done already are skipped,
    so a redelivered task does nothing. A wake-up task (`line_code`) also takes along its line's
    fresh rows, and wakes another task if it could not take them all.

    One transaction for the task: a crash leaves every row either applied or still pending. The
    rows are applied together (record_steps writes many results in a few statements); if the
    database refuses something, the chunk is rolled back and applied again one row at a time,
    each in its own savepoint, so one row's trouble costs only that row.
    """
    counts = dict.fromkeys((APPLIED, REJECTED, WAITING, RETRY, SKIPPED), 0)
    with transaction.atomic():
        entries = _with_stations(list(_pending().filter(id__any=entry_ids)))
        lines = {e.station.line.code for e in entries} | ({line_code} if line_code else set())
        room = settings.INGEST_TASK_CHUNK - len(entries)
        if room > 0 and lines:
            # A task is also a wake-up call for its lines: it takes along fresh rows whose own
            # tasks have not run yet (they then find them done and end at once), so a stream of
            # single-result requests is applied many results per transaction, not one.
            along = _with_stations(
                list(
                    _pending()
                    .filter(
                        reason_code="",
                        station_id__in=Station.objects.filter(line__code__in=lines).values("id"),
                    )
                    .exclude(id__any=[e.pk for e in entries])
                    .order_by("id")[:room]
                )
            )
            entries += along
            if line_code and len(along) == room:
                wake_up(line_code)  # there may be more
        if not entries:
            return counts
        entries.sort(key=_as_they_happened)
        done: dict[int, InboxEntry] = {}
        try:
            with transaction.atomic():
                _apply_entries(entries, _lock_cells(entries), done)
        except DatabaseError as error:
            logger.warning(
                "Applying %d inbox rows together failed (%s); one by one", len(entries), error
            )
            done = {}
            entries = _with_stations(
                list(InboxEntry.objects.filter(id__any=[e.pk for e in entries]))
            )
            entries.sort(key=_as_they_happened)
            for entry in entries:
                if entry.pk not in done:
                    _apply_alone(entry, done)
        update_rows(
            list(done.values()),
            [
                "status",
                "reason_code",
                "reason",
                "outcome",
                "violations",
                "run",
                "attempts",
                "processed_at",
            ],
        )
        for entry in done.values():
            counts[_state_of(entry)] += 1
        _enqueue_per_line(
            [e for e in done.values() if e.reason_code == PendingReason.RETRYING], countdown=2
        )
    return counts


def _as_they_happened(entry: InboxEntry) -> tuple:
    """Sort key: in the order the results happened (cycler files, which carry no time, last)."""
    return (entry.occurred_at is None, entry.occurred_at or entry.received_at, entry.pk)


def _pending() -> QuerySet[InboxEntry]:
    """Pending rows, locked for this transaction; rows another task holds are skipped.

    Only the inbox rows are locked (OF self): a filter through the station would otherwise lock
    the station rows too, and every intake commit checks its rows' station key against them.
    The sweep's enqueued_at is left unread: Django parses each time in Python (~4 us).
    """
    return (
        InboxEntry.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(status=InboxEntry.Status.PENDING)
        .defer("enqueued_at")
    )


def _with_stations(entries: list[InboxEntry]) -> list[InboxEntry]:
    """The rows with their stations and lines: one instance per station, not one per row."""
    stations = Station.objects.select_related("line").in_bulk({e.station_id for e in entries})
    for entry in entries:
        entry.station = stations[entry.station_id]
    return entries


def _lock_cells(entries: Sequence[InboxEntry]) -> dict[str, Cell]:
    # Lock the cells up front and in id order: two tasks touching the same cells queue up
    # instead of deadlocking, and a row's "waiting" decision is made under the cell's lock.
    return {
        cell.serial: cell
        for cell in Cell.objects.select_for_update()
        .filter(serial__any={e.cell_serial for e in entries})
        .order_by("id")
    }


def _apply_alone(entry: InboxEntry, done: dict[int, InboxEntry]) -> None:
    """Apply one row (and rows that waited for it) in a savepoint; a database error rolls them
    back and leaves this row pending for a retry."""
    was_retrying, attempts = entry.reason_code == PendingReason.RETRYING, entry.attempts + 1
    applied: dict[int, InboxEntry] = {}
    try:
        with transaction.atomic():
            _apply_entries([entry], _lock_cells([entry]), applied, exclude=done)
    except DatabaseError as error:
        entry.status, entry.run = InboxEntry.Status.PENDING, None
        entry.outcome, entry.violations = "", []
        entry.attempts, entry.processed_at = attempts, None
        if was_retrying and attempts >= MAX_RETRIES_AFTER_ERROR:
            _reject(entry, "processing_error", f"Could not be applied: {error}")
        else:
            logger.warning("Inbox row %s left pending after a database error: %s", entry.pk, error)
            entry.reason_code, entry.reason = PendingReason.RETRYING, f"Retrying after: {error}"
        done[entry.pk] = entry
        return
    done.update(applied)


def _apply_entries(
    entries: Sequence[InboxEntry],
    cells: dict[str, Cell],
    done: dict[int, InboxEntry],
    exclude: Iterable[int] = (),
) -> None:
    """Apply rows in order (see the module's note on route order); each row ends in `done`,
    applied, rejected or waiting. Rows in `exclude` are dealt with already."""
    context = StepContext(cells.values())
    todo = list(entries)
    while todo:
        ready: list[tuple[InboxEntry, StepInput]] = []
        for entry in todo:
            entry.attempts += 1
            done[entry.pk] = entry
            cell = cells.get(entry.cell_serial)
            if cell is None:
                _reject(entry, "unknown_cell", f"No cell {entry.cell_serial}.")
                continue
            try:
                if entry.kind == InboxEntry.Kind.CYCLER_FILE:
                    result = read_cycler_entry(entry, cell)
                else:
                    result = step_result_of(entry)
            except CyclerFileRejected as error:  # a file that cannot be trusted as data
                _reject(entry, error.check, error.detail)
                continue
            by = f"station:{entry.station.code}"
            ready.append((entry, StepInput(cell, entry.station, result, by)))
        outcomes = record_steps([item for _, item in ready], context)
        waiting, moved = [], set()
        for (entry, item), outcome in zip(ready, outcomes, strict=True):
            if not isinstance(outcome, DomainError):
                _applied(entry, outcome)
                moved.add(entry.cell_serial)
            elif outcome.code == "wrong_step" and _waits_for_earlier_step(item, context):
                entry.reason_code = PendingReason.WAITING
                entry.reason = f"Waiting for the result of an earlier step: {outcome.detail}"
                waiting.append(entry)
            else:
                _reject(entry, outcome.code, outcome.detail)
        if not moved:
            return
        # Rows of the cells just moved that wait for them: ours, then those another task found
        # waiting (it decided so under the cell's lock, so its decision is committed by now).
        others = _with_stations(
            list(
                _pending()
                .filter(
                    kind=InboxEntry.Kind.RESULT,
                    reason_code=PendingReason.WAITING,
                    cell_serial__any=moved,
                )
                .exclude(id__any=[*done, *exclude])
                .order_by("occurred_at", "id")
            )
        )
        todo = [e for e in waiting if e.cell_serial in moved] + others


def _applied(entry: InboxEntry, run: ProcessRun) -> None:
    entry.status = InboxEntry.Status.PROCESSED
    entry.reason_code, entry.reason = "", ""
    entry.outcome = run.verdict
    entry.violations = run.violations
    entry.run = run
    entry.processed_at = timezone.now()


def _state_of(entry: InboxEntry) -> str:
    if entry.status == InboxEntry.Status.PROCESSED:
        return APPLIED
    if entry.status == InboxEntry.Status.REJECTED:
        return REJECTED
    return RETRY if entry.reason_code == PendingReason.RETRYING else WAITING


def _reject(entry: InboxEntry, code: str, reason: str) -> str:
    entry.status = InboxEntry.Status.REJECTED
    entry.reason_code, entry.reason = code, reason
    entry.processed_at = timezone.now()
    return REJECTED


def _waits_for_earlier_step(item: StepInput, context: StepContext) -> bool:
    """True when the station's step lies ahead of the cell's next step on its route: the result
    arrived before the one for the step in between, so it waits rather than being refused.

    Asked after record_steps has applied the whole list, when the cell may have moved on to the
    very step this result is for (the earlier step's result came later in the list): that counts
    as ahead too, and the next round applies it."""
    cell, station = item.cell, item.station
    if cell.next_step_id is None or cell.batch.line_id != station.line_id:
        return False
    return any(
        step.station_kind == station.kind and step.position >= cell.next_step.position
        for step in context.route_steps(cell.batch.route_id)
    )


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
