"""The one domain error type: services raise it, the API turns it into the JSON error format."""

from __future__ import annotations

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

# The models whose transitions check_transition reads, named for translators: their verbose names
# are not marked, as marking them would change the admin's labels and the migrations.
MODEL_NAMES = (
    gettext_noop("batch"),
    gettext_noop("cell"),
    gettext_noop("equipment"),
    gettext_noop("experiment"),
    gettext_noop("grading rule set"),
    gettext_noop("hold"),
    gettext_noop("material lot"),
    gettext_noop("non-conformance action"),
    gettext_noop("non-conformance report"),
    gettext_noop("recipe version"),
)


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
        raise DomainError(
            "invalid_transition",
            _("A %(name)s cannot go from %(current)s to %(new)s.")
            % {
                "name": _(str(model._meta.verbose_name)),
                "current": in_words(model.Status, current),
                "new": in_words(model.Status, new),
            },
        )


def in_words(choices: type, value: str) -> str:
    """A coded value (a state, a step, a material role) in a refusal: the code in the default
    language, the words API clients and the stored sentences have always had; the choice's
    label in another language, for the people reading the pages."""
    if translation.get_language() in (None, settings.LANGUAGE_CODE):
        return value
    try:
        return str(choices(value).label)
    except ValueError:
        return value


def require_reason(reason: str) -> None:
    """Refuse an action whose reason is empty: every deliberate change says why."""
    if not reason or not reason.strip():
        raise DomainError("reason_required", _("A reason is required."), status=400)
