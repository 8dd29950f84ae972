"""The workers' side of ingestion: inbox rows applied to the cells' record.

`process_entries` (run by stations.tasks) applies pending rows with
`batches.services.record_steps`, the one place the business rules live, and marks each row
processed, rejected or still pending.

Route order: a result for a step ahead of the cell's next step (pressing before stacking) is not
an error; it stays pending and is applied right after the earlier step's result, in the same
transaction when they are processed together, else by whichever task applies that earlier result
(it re-reads the pending rows of the cells it moved).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

import numpy as np
from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import DateTimeField, QuerySet, TextField
from django.db.models.expressions import RawSQL
from django.utils import timezone

from batches.models import Cell, ProcessRun
from batches.services import StepContext, StepInput, StepResult, record_steps
from core import partitions
from core.bulk import update_rows
from core.errors import DomainError
from core.validation import AHEAD_ALLOWED, EARLIEST_TIME, time_window_problem
from formation.bridge import cycler_file_result
from formation.cycler import CyclerFileRejected
from lines.models import Station, StationKind
from stations.dispatch import enqueue_per_line, wake_up
from stations.models import InboxEntry, PendingReason

logger = logging.getLogger(__name__)

# An unexpected database error (a deadlock with an engineer's hold, a lost connection) leaves the
# row pending for a retry; after this many such retries it is rejected so it cannot loop forever.
MAX_RETRIES_AFTER_ERROR = 10

# The intake checks times against the web server's clock, received_at is the database's: what
# it let in is never refused here for the difference between the two.
CLOCKS_APART = timedelta(hours=1)

# Dwell at peak: the time the pressure curve spends at or above this share of its peak.
DWELL_SHARE_OF_PEAK = 0.98


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


def _time(text: str | None, *, received_at: datetime) -> datetime | None:
    if not text:
        return None
    value = datetime.fromisoformat(text)
    if problem := time_window_problem(value, now=received_at + CLOCKS_APART):
        raise ValueError(f"started_at {text}: {problem}")
    return value


def step_result_of(entry: InboxEntry) -> StepResult:
    """The inbox row's result as record_step takes it, with pressing features derived from the
    pressure curve where the station did not send them."""
    payload = entry.payload
    measurements = dict(payload.get("measurements", {}))
    curves = payload.get("curves", {})
    pressure = curves.get("pressure")
    if entry.station.kind == StationKind.PRESSING and pressure is not None:
        derived = pressing_features(pressure["t_s"], pressure["values"])
        for name, value in derived.items():
            measurements.setdefault(name, value)
    if entry.station.kind == StationKind.AGING:
        for name, value in aging_features(measurements).items():
            measurements.setdefault(name, value)
    return StepResult(
        occurred_at=entry.occurred_at,
        measurements=measurements,
        verdict=payload.get("verdict") or "",
        equipment_ref=payload.get("equipment", ""),
        fixture_ref=payload.get("fixture", ""),
        channel_ref=payload.get("channel", ""),
        defects=payload.get("defects", []),
        curves=curves,
        material_lots=payload.get("material_lots", {}),
        event_id=entry.event_id,
        recipe_version=payload.get("recipe_version"),
        operator=payload.get("operator", ""),
        started_at=_time(payload.get("started_at"), received_at=entry.received_at),
    )


APPLIED, REJECTED, WAITING, RETRY, SKIPPED = "applied", "rejected", "waiting", "retry", "skipped"


def process_entries(entry_ids: Sequence[int], *, line_code: str | None = None) -> dict[str, int]:
    """Apply pending inbox rows; rows another task holds or that are done already are skipped,
    so a redelivered task does nothing. A wake-up task (`line_code`) also takes along its line's
    fresh rows, and wakes another task if it could not take them all.

    One transaction for the task: a crash leaves every row either applied or still pending. The
    rows are applied together (record_steps writes many results in a few statements); if the
    database refuses something (or anything else fails), the chunk is rolled back and applied
    again one row at a time, each in its own savepoint, so one row's trouble costs only that row:
    a row whose stored content cannot be read or applied ends rejected with the reason.
    """
    counts = dict.fromkeys((APPLIED, REJECTED, WAITING, RETRY, SKIPPED), 0)
    with transaction.atomic():
        entries = _pending_by_id(entry_ids)
        lines = {e.station.line.code for e in entries} | ({line_code} if line_code else set())
        room = settings.INGEST_TASK_CHUNK - len(entries)
        if room > 0 and lines:
            # A task is also a wake-up call for its lines: it takes along fresh rows whose own
            # tasks have not run yet (they then find them done and end at once), so a stream of
            # single-result requests is applied many results per transaction, not one. From the
            # recent months' partitions only (a row left in an older one has its own task and
            # the sweep), and this task's own rows (locked by it already) left out here, not in
            # the query: a list of ids there had PostgreSQL weigh each id against each month's
            # statistics while planning, some 60 ms a task at a year of history.
            since, until = partitions.recent_months(timezone.now())
            taken = {e.pk for e in entries}
            fresh = _loaded(
                _pending()
                .filter(
                    reason_code="",
                    station_id__in=Station.objects.filter(line__code__in=lines).values("id"),
                    received_at__gte=since,
                    received_at__lt=until,
                )
                .order_by("id")[: room + len(taken)]
            )
            along = [e for e in fresh if e.pk not in taken][:room]
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
        except Exception as error:  # any row's trouble, found out row by row (_apply_alone)
            logger.warning(
                "Applying %d inbox rows together failed (%r); one by one", len(entries), error
            )
            done = {}
            entries = _loaded(InboxEntry.objects.filter(id__any=[e.pk for e in entries]))
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
            partition_key="received_at",
        )
        for entry in done.values():
            counts[_state_of(entry)] += 1
        enqueue_per_line(
            [e for e in done.values() if e.reason_code == PendingReason.RETRYING], countdown=2
        )
    return counts


def _pending_by_id(entry_ids: Sequence[int]) -> list[InboxEntry]:
    """The pending rows of these ids, locked. Looked for in the recent months' partitions first:
    by id alone, PostgreSQL would search the primary key of every month's partition, a cost that
    grows with the history. Only ids not found there (a row received long ago and swept again,
    or one another task has taken) are looked for in the others."""
    since, until = partitions.recent_months(timezone.now())
    entries = _loaded(
        _pending().filter(id__any=entry_ids, received_at__gte=since, received_at__lt=until)
    )
    found = {e.pk for e in entries}
    older = [pk for pk in entry_ids if pk not in found]
    if older:
        entries += _loaded(
            _pending().filter(id__any=older).exclude(received_at__gte=since, received_at__lt=until)
        )
    return entries


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


_WINDOW = "outside the times the intake accepts (from 2000-01-01 to one day after receipt)."

# A row's time is read only inside the window the intake allows (core.validation), else as text
# to reject the row with: an older release stored times Python cannot hold (0001-01-01T00:00
# +09:00 is 1 BC in UTC), and one such row failed every read of it, so every task of its line.
# Raw SQL: built once, not resolved by the ORM at every task (most tasks find one row or none).
_TIME = "batches_inboxentry.occurred_at"
_IN_WINDOW_SQL = f"{_TIME} >= %s AND {_TIME} <= batches_inboxentry.received_at + %s"
_IN_WINDOW_PARAMS = (EARLIEST_TIME, AHEAD_ALLOWED + CLOCKS_APART)
_OCCURRED_AT_READ = RawSQL(
    f"CASE WHEN {_IN_WINDOW_SQL} THEN {_TIME} END", _IN_WINDOW_PARAMS, DateTimeField()
)
_OCCURRED_AT_REFUSED = RawSQL(
    f"CASE WHEN NOT ({_IN_WINDOW_SQL}) THEN {_TIME}::text END", _IN_WINDOW_PARAMS, TextField()
)


def _loaded(entries: QuerySet[InboxEntry]) -> list[InboxEntry]:
    """The rows, their times read safely (see _IN_WINDOW_SQL), with their stations and lines: one
    instance per station, not one per row."""
    rows = list(
        entries.defer("occurred_at").annotate(
            occurred_at_read=_OCCURRED_AT_READ, occurred_at_refused=_OCCURRED_AT_REFUSED
        )
    )
    stations = Station.objects.select_related("line").in_bulk({e.station_id for e in rows})
    for entry in rows:
        entry.occurred_at = entry.occurred_at_read
        entry.station = stations[entry.station_id]
    return rows


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
    back and leaves this row pending for a retry, any other error rejects it."""
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
    except Exception as error:
        # Its content makes the step engine fail (a payload an older release let in, or a bug):
        # the same content would fail again, so the row is rejected now, with the error, and the
        # rest of its line goes on. An engineer sends it again once the cause is put right.
        logger.exception("Inbox row %s could not be applied", entry.pk)
        entry.status, entry.run = InboxEntry.Status.PENDING, None
        entry.outcome, entry.violations, entry.attempts = "", [], attempts
        _reject(entry, "processing_error", f"Could not be applied: {error!r}")
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
            if entry.occurred_at_refused is not None:
                _reject(entry, "unreadable", f"occurred_at {entry.occurred_at_refused}: {_WINDOW}")
                continue
            cell = cells.get(entry.cell_serial)
            if cell is None:
                _reject(entry, "unknown_cell", f"No cell {entry.cell_serial}.")
                continue
            try:
                if entry.kind == InboxEntry.Kind.CYCLER_FILE:
                    result = _cycler_file_result(entry)
                else:
                    result = step_result_of(entry)
            except CyclerFileRejected as error:  # a file that cannot be trusted as data
                _reject(entry, error.check, error.detail)
                continue
            except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as error:
                # A stored payload that is not a result (an older release stored what this
                # one's schema refuses): nothing to apply, whatever is tried.
                _reject(entry, "unreadable", f"The stored result cannot be read: {error!r}")
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
        # The rows this task has (locked by it already) are left out here, not in the query
        # (see process_entries).
        skipped = {*done, *exclude}
        others = [
            e
            for e in _loaded(
                _pending()
                .filter(
                    kind=InboxEntry.Kind.RESULT,
                    reason_code=PendingReason.WAITING,
                    cell_serial__any=moved,
                )
                .order_by("occurred_at", "id")
            )
            if e.pk not in skipped
        ]
        todo = [e for e in waiting if e.cell_serial in moved] + others


def _cycler_file_result(entry: InboxEntry) -> StepResult:
    read = cycler_file_result(
        entry.payload,
        event_id=entry.event_id,
        occurred_at=entry.occurred_at or entry.received_at,
    )
    # Which parser, at which version, read the file: kept beside its sha256 on the inbox row.
    entry.payload = {
        **entry.payload,
        "parser": read.parser,
        "detected_format": read.detected_format,
        "timed_by": read.timed_by,  # the run's times from the file's clock, or its receipt
    }
    InboxEntry.objects.filter(pk=entry.pk).update(payload=entry.payload)
    read.result.fixture_ref = entry.payload.get("fixture", "")
    read.result.channel_ref = entry.payload.get("channel", "")
    return read.result


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
