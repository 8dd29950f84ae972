from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.utils import timezone

from audit.models import Event
from core.bulk import copy_rows


def actor_name(actor: Any) -> str:
    """The actor as the trail names it: a user's username, or a rule/station label as given."""
    if isinstance(actor, str):
        return actor
    return actor.get_username()


# An event's fields besides its time and id, in the order `_event_values` gives them.
_EVENT_FIELDS = ("actor", "user_id", "verb", "subject_type", "subject", "reason", "data")


def _event_values(
    *,
    actor: Any,
    verb: str,
    subject_type: str,
    subject: str,
    reason: str = "",
    data: dict[str, Any] | None = None,
) -> tuple:
    user_id = None if isinstance(actor, str) else actor.pk
    return (actor_name(actor), user_id, verb, subject_type, subject, reason, data or {})


def record_events(events: Sequence[Mapping[str, Any]]) -> None:
    """Append many events at once (each given as record_event's arguments), with one binary COPY:
    a worker writes one per station result, hundreds a transaction."""
    if events:
        now = timezone.now()
        rows = ((now, *_event_values(**fields)) for fields in events)
        copy_rows(Event, ["occurred_at", *_EVENT_FIELDS], rows)


def record_event(**fields: Any) -> Event:
    """Append one event: its actor (a user, or a label such as "station:ST-01"), verb,
    subject_type, subject, and optionally reason and data. Called by services inside their own
    transaction."""
    event = Event(**dict(zip(_EVENT_FIELDS, _event_values(**fields), strict=True)))
    event.save()
    return event
