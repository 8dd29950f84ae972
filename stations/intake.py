"""Station data intake: the one entry point from station messages to the inbox.

Every connector (HTTP, the MQTT bridge, the OPC UA connector) hands what a station sent to
`accept_results`, `accept_cycler_file` or `accept_state`; the first two store it in the inbox (stations.InboxEntry) inside
the caller's transaction and enqueue the rows on commit (stations.dispatch); the reply goes out
only once the rows are durable. The workers apply them (stations.worker). The broker carries ids
only: a lost or repeated task is harmless, the sweep re-enqueues rows left pending.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from audit.services import record_events
from core.bulk import execute_bound
from core.errors import DomainError, require_reason
from lines.models import Station
from lines.services import set_station_state
from stations.dispatch import enqueue, enqueue_per_line
from stations.models import InboxEntry, InboxKey
from stations.schema import StationResultIn
from stations.state import StateSerializer


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


def accept_state(station: Station, data: Any, *, by: str) -> dict[str, Any]:
    """Record a state report (the body of POST /station/state, as decoded JSON); returns the
    reply body. A malformed report raises DomainError `invalid` with field errors, as HTTP
    answers it, and records nothing."""
    serializer = StateSerializer(data=data)
    if not serializer.is_valid():
        raise DomainError(
            "invalid", _("The request is not valid."), status=400, errors=dict(serializer.errors)
        )
    report = serializer.validated_data
    with transaction.atomic():  # set_station_state locks the station row
        station = set_station_state(
            station,
            state=report["state"],
            by=by,
            reason=report.get("reason", ""),
            occurred_at=report.get("occurred_at"),
            reason_code=report.get("reason_code", ""),
        )
    # A late report's own time: the station's current state may be a newer one.
    return {
        "state": report["state"],
        "occurred_at": report.get("occurred_at") or station.state_since,
    }


def accept_cycler_file(
    station: Station,
    *,
    event_id: str,
    cell_serial: str,
    file_format: str,
    name: str,
    sha256: str,
    size: int,
    original_name: str,
    fixture: str = "",
    channel: str = "",
) -> Accepted:
    """Store an uploaded cycler file's inbox row; its content is the file's sha256 and fields.
    `name` is where formation.storage stored the file."""
    content = {"cell": cell_serial, "format": file_format, "sha256": sha256}
    # Only when sent: an upload without them keeps the content (and repeat check) it had before.
    content.update(
        {name: code for name, code in (("fixture", fixture), ("channel", channel)) if code}
    )
    payload = {
        **content,
        "path": name,  # the storage name; on the file system, relative to MEDIA_ROOT
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
        _(
            "An event_id was sent again with different content; "
            "nothing from this request was stored."
        ),
        status=409,
        errors=errors,
    )


# The key first (InboxKey: unique across every month of the partitioned inbox, archived rows
# included), then an inbox row for each event whose key was new. A concurrent request with the
# same event waits on the other's key and, once that commits, skips it.
_INSERT_SQL = f"""
    WITH incoming AS (
        SELECT * FROM unnest(%b::text[], %b::text[], %b::timestamptz[], %b::text[], %b::text[])
            AS incoming(e, c, o, h, p)
    ), station AS (
        SELECT %b::bigint AS id
    ), keys AS (
        INSERT INTO {InboxKey._meta.db_table} (station_id, event_id, content_hash, received_at)
        SELECT station.id, e, h, now() FROM incoming, station
        ON CONFLICT (station_id, event_id) DO NOTHING
        RETURNING event_id
    )
    INSERT INTO {InboxEntry._meta.db_table}
        (station_id, kind, event_id, cell_serial, occurred_at, content_hash, payload, status,
         reason_code, reason, outcome, violations, attempts, received_at, enqueued_at)
    SELECT station.id, %b, e, c, o, h, p::jsonb, 'pending', '', %b, '', '[]'::jsonb, 0, now(),
        now()
    FROM incoming JOIN keys ON keys.event_id = incoming.e, station
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
                [e.event_id for e in entries],
                [e.cell_serial for e in entries],
                [e.occurred_at for e in entries],
                [e.content_hash for e in entries],
                [e.payload.decode() for e in entries],
                station.pk,
                kind,
                reason,
            ],
        )
        inserted = {event_id: pk for pk, event_id in rows}
        repeated = [e for e in entries if e.event_id not in inserted]
        if repeated:
            stored = dict(
                InboxKey.objects.filter(
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
            # Not its time: a row rejected as unreadable may hold one Python cannot read.
            .defer("payload", "occurred_at")
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
        enqueue_per_line(entries)
    return len(entries)
