from __future__ import annotations

from typing import Any

from audit.models import Event


def actor_name(actor: Any) -> str:
    """The actor as the trail names it: a user's username, or a rule/station label as given."""
    if isinstance(actor, str):
        return actor
    return actor.get_username()


def new_event(
    *,
    actor: Any,
    verb: str,
    subject_type: str,
    subject: str,
    reason: str = "",
    data: dict[str, Any] | None = None,
) -> Event:
    """One event, not yet saved: for services that write many at once (mes.bulk.copy_objects)."""
    return Event(
        actor=actor_name(actor),
        user=None if isinstance(actor, str) else actor,
        verb=verb,
        subject_type=subject_type,
        subject=subject,
        reason=reason,
        data=data or {},
    )


def record_event(**fields: Any) -> Event:
    """Append one event (the arguments of new_event); called by services inside their own
    transaction."""
    event = new_event(**fields)
    event.save()
    return event
