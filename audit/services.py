from __future__ import annotations

from typing import Any

from audit.models import Event


def actor_name(actor: Any) -> str:
    """The actor as the trail names it: a user's username, or a rule/station label as given."""
    if isinstance(actor, str):
        return actor
    return actor.get_username()


def record_event(
    *,
    actor: Any,
    verb: str,
    subject_type: str,
    subject: str,
    reason: str = "",
    data: dict[str, Any] | None = None,
) -> Event:
    """Append one event; called by services inside their own transaction."""
    user = None if isinstance(actor, str) else actor
    return Event.objects.create(
        actor=actor_name(actor),
        user=user,
        verb=verb,
        subject_type=subject_type,
        subject=subject,
        reason=reason,
        data=data or {},
    )
