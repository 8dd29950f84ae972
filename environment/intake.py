"""The one entry point for dry-room readings, shared by HTTP (`POST /api/v1/env/{zone}/readings`)
and the MQTT bridge (`mes/v1/env/{zone}/readings`).

A request is checked whole (nothing is written when any reading is malformed), stored with one
statement (a repeat of a (zone, sensor, at) is a duplicate, never a second row) and judged in the
same transaction. Judging here rather than in a worker: it is a few indexed reads per sensor and
quantity that the readings touch, sensors send a handful of readings every few seconds, and a
zone's excursion then counts (and holds) the moment its reading is committed, with no queue in
between for a stacker to take more cells through an excursion.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import psycopg
from django.db import OperationalError, connection, transaction
from django.utils.translation import gettext as _

from core.errors import DomainError, NotFound
from core.validation import IDENTIFIER_MESSAGE, is_identifier, time_window_problem
from environment import judging
from lines.models import ZONE_QUANTITIES, Zone

MAX_READINGS = 1000
DEADLOCK_ATTEMPTS = 3
MAX_SENSOR_LENGTH = 60
FIELDS = {"sensor", "at", *ZONE_QUANTITIES}
# Beyond what any dew point, room temperature or H2S sensor reports, and what a real column holds.
LARGEST_VALUE = 1e6

Reading = tuple[str, datetime, dict[str, float | None]]


def _parse_at(value: Any) -> datetime | str:
    """An RFC 3339 time with an offset, or why it is not one."""
    if not isinstance(value, str):
        return "An RFC 3339 time with an offset, e.g. 2026-11-30T09:00:00+09:00."
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return "An RFC 3339 time with an offset, e.g. 2026-11-30T09:00:00+09:00."
    if at.tzinfo is None or "T" not in value.upper():
        return "An RFC 3339 time with an offset, e.g. 2026-11-30T09:00:00+09:00."
    return at


def _reading_problems(item: Any, now: datetime) -> tuple[Reading | None, dict[str, list[str]]]:
    if not isinstance(item, dict):
        return None, {"non_field_errors": ["A reading is an object."]}
    problems: dict[str, list[str]] = {}
    for name in sorted(set(item) - FIELDS):
        problems[name] = ["Unknown field."]
    sensor = item.get("sensor")
    if not isinstance(sensor, str) or not 1 <= len(sensor) <= MAX_SENSOR_LENGTH:
        problems["sensor"] = [f"A sensor id of 1 to {MAX_SENSOR_LENGTH} characters."]
    elif not is_identifier(sensor):
        problems["sensor"] = [IDENTIFIER_MESSAGE]
    at = _parse_at(item.get("at")) if "at" in item else "This field is required."
    if isinstance(at, str):
        problems["at"] = [at]
    elif problem := time_window_problem(at, now=now):
        problems["at"] = [problem]
    values: dict[str, float | None] = {}
    for quantity in ZONE_QUANTITIES:
        value = item.get(quantity)
        if value is None:
            values[quantity] = None
        elif (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or abs(value) > LARGEST_VALUE
        ):
            problems[quantity] = [f"A finite number (at most {LARGEST_VALUE:g} in size) or null."]
        else:
            values[quantity] = float(value)
    if not problems and all(v is None for v in values.values()):
        problems["non_field_errors"] = [f"At least one of {', '.join(ZONE_QUANTITIES)}."]
    if problems:
        return None, problems
    return (sensor, at.astimezone(UTC), values), {}


def validate_readings(body: Any, *, now: datetime | None = None) -> list[Reading]:
    """The readings of a request body (`{"readings": [...]}` or one reading), or DomainError
    `invalid` (400) with per-index errors under errors.readings."""
    now = now or datetime.now(UTC)
    if isinstance(body, dict) and "readings" in body:
        if set(body) != {"readings"}:
            extra = sorted(set(body) - {"readings"})
            raise DomainError(
                "invalid",
                _("The request is not valid."),
                status=400,
                errors={name: ["Unknown field."] for name in extra},
            )
        items = body["readings"]
        if not isinstance(items, list) or not 1 <= len(items) <= MAX_READINGS:
            raise DomainError(
                "invalid",
                _("readings is a list of 1 to %(most)s readings.") % {"most": MAX_READINGS},
                status=400,
                errors={"readings": [f"A list of 1 to {MAX_READINGS} readings."]},
            )
    elif isinstance(body, dict):
        items = [body]  # one reading, as an MQTT sensor publishes it
    else:
        raise DomainError(
            "invalid",
            _('The body is a reading or {"readings": [...]}.'),
            status=400,
            errors={"non_field_errors": ["An object."]},
        )
    readings, errors = [], {}
    for index, item in enumerate(items):
        reading, problems = _reading_problems(item, now)
        if problems:
            errors[str(index)] = problems
        else:
            readings.append(reading)
    if errors:
        raise DomainError(
            "invalid",
            _("%(invalid)s of %(total)s readings are not valid; nothing was stored.")
            % {"invalid": len(errors), "total": len(items)},
            status=400,
            errors={"readings": errors},
        )
    return readings


def zone_named(code: str) -> Zone:
    zone = Zone.objects.filter(code=code).first() if isinstance(code, str) else None
    if zone is None:
        raise NotFound("unknown_zone", _("No dry-room zone %(code)s.") % {"code": repr(code)})
    return zone


def _store(zone: Zone, readings: list[Reading]) -> list[Reading]:
    """Insert the readings in one statement; returns those that were new (a reading repeated in
    the request or stored before is a duplicate, the first one stored wins)."""
    columns = list(ZONE_QUANTITIES)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO environment_reading (zone_id, sensor, at, {cols}) "
            "SELECT %s, sensor, at, {cols} FROM unnest(%s::text[], %s::timestamptz[], "
            "{arrays}) AS r(sensor, at, {cols}) "
            "ON CONFLICT (zone_id, sensor, at) DO NOTHING RETURNING sensor, at".format(
                cols=", ".join(columns), arrays=", ".join("%s::real[]" for _ in columns)
            ),
            [
                zone.pk,
                [sensor for sensor, _, _ in readings],
                [at for _, at, _ in readings],
                *([values[q] for _, _, values in readings] for q in columns),
            ],
        )
        stored = {(sensor, at) for sensor, at in cursor.fetchall()}
    new = []
    for reading in readings:
        key = (reading[0], reading[1])
        if key in stored:
            stored.discard(key)  # the first of repeats within one request
            new.append(reading)
    return new


def accept_readings(zone_code: str, body: Any) -> dict[str, int]:
    """Validate, store and judge a zone's readings; the reply `{"accepted", "duplicates",
    "excursions"}` (excursions: how many counted or changed because of them). Raises NotFound
    `unknown_zone` (404) or DomainError `invalid` (400), having written nothing.

    Holding what an excursion touched can meet a worker applying results for the same cells;
    PostgreSQL then refuses one of the two (a deadlock), and a refused request is tried again
    here (unless the caller's own transaction encloses it)."""
    for attempt in range(1, DEADLOCK_ATTEMPTS + 1):
        try:
            return _accept_readings(zone_code, body)
        except OperationalError as error:
            deadlock = isinstance(error.__cause__, psycopg.errors.DeadlockDetected)
            if not deadlock or connection.in_atomic_block or attempt == DEADLOCK_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


@transaction.atomic
def _accept_readings(zone_code: str, body: Any) -> dict[str, int]:
    zone = zone_named(zone_code)
    readings = validate_readings(body)
    # One judge per zone at a time: a late reading's span is read and rewritten whole.
    zone = Zone.objects.select_for_update().get(pk=zone.pk)
    new = _store(zone, readings)
    changed = judging.judge(zone, new) if new else []
    return {
        "accepted": len(new),
        "duplicates": len(readings) - len(new),
        "excursions": len(changed),
    }
