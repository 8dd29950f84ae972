"""What the plant accepts from outside as identifiers, text and times (API.md, RESULT).

One rule in one place, for two kinds of reader: stations/schema.py checks decoded results with
the predicates, the DRF serializers of the small station bodies use the validators (DRF turns
Django's ValidationError into a field error).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError

# Identifiers and codes (event ids, serials, lot codes, equipment, measurement names) end up in
# URLs, file names, CSV exports and log lines, where a control character breaks the line or the
# lookup: an event_id with a newline could never be asked for again.
IDENTIFIER_MESSAGE = "Control characters (U+0000-U+001F) are not allowed."
# PostgreSQL's text and jsonb cannot hold NUL at all: no string may contain it.
TEXT_MESSAGE = "NUL characters (U+0000) are not allowed."

# A time before the plant's records began is a station clock that was never set; a little ahead
# of now is a clock running fast, further ahead a wrong one. The window also keeps every stored
# time readable: PostgreSQL stores years Python cannot hold (0001 at +09:00 is 1 BC in UTC).
EARLIEST_TIME = datetime(2000, 1, 1, tzinfo=UTC)
AHEAD_ALLOWED = timedelta(days=1)

_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f]")


def is_identifier(text: str) -> bool:
    """True when `text` holds no control character (what a stored identifier may be)."""
    return _CONTROL_CHARACTER.search(text) is None


def is_storable_text(text: str) -> bool:
    """True when `text` holds no NUL (what PostgreSQL can store)."""
    return "\x00" not in text


def validate_identifier(value: str) -> None:
    if not is_identifier(value):
        raise ValidationError(IDENTIFIER_MESSAGE, code="invalid")


def validate_identifier_keys(value: Mapping[str, Any]) -> None:
    """The keys of a mapping are identifiers too (the roles of `material_lots`)."""
    if not all(is_identifier(key) for key in value):
        raise ValidationError(f"A key: {IDENTIFIER_MESSAGE}", code="invalid")


def time_window_problem(value: datetime, *, now: datetime | None = None) -> str | None:
    """Why `value` cannot be a station's time, or None when it lies in the window: from
    EARLIEST_TIME to AHEAD_ALLOWED after `now` (now unless given, e.g. when the row arrived)."""
    latest = (now or datetime.now(UTC)) + AHEAD_ALLOWED
    if EARLIEST_TIME <= value <= latest:
        return None
    return (
        f"Must lie between {EARLIEST_TIME:%Y-%m-%dT%H:%M:%SZ} and one day after now "
        f"({latest.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ})."
    )


def validate_time_window(value: datetime) -> None:
    if problem := time_window_problem(value):
        raise ValidationError(problem, code="invalid")
