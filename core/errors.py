"""The one domain error type: services raise it, the API turns it into the JSON error format."""

from __future__ import annotations


class DomainError(Exception):
    """A forbidden transition or a broken business rule, with a machine code for clients."""

    status = 409

    def __init__(
        self, code: str, detail: str, *, status: int | None = None, errors: dict | None = None
    ) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.errors = errors or {}  # field or per-item errors, e.g. which event_ids were reused
        if status is not None:
            self.status = status


class NotFound(DomainError):
    status = 404


def check_transition(model: type, current: str, new: str) -> None:
    """Raise unless `model.TRANSITIONS` allows current -> new (the one place transitions are read)."""
    if new not in model.TRANSITIONS[current]:
        name = model._meta.verbose_name
        raise DomainError("invalid_transition", f"A {name} cannot go from {current} to {new}.")


def require_reason(reason: str) -> None:
    """Refuse an action whose reason is empty: every deliberate change says why."""
    if not reason or not reason.strip():
        raise DomainError("reason_required", "A reason is required.", status=400)
