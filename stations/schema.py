"""The shape of station messages, validated with msgspec.

A results request carries up to 1000 results, each possibly with curves of thousands of points; a
DRF serializer costs ~35 us per small item and far more per curve point, msgspec validates the same
shape in C. The OpenAPI schema documents these shapes with plain DRF serializers
(batches/api/station_serializers.py); a test checks examples against both.

Every connector (HTTP today, MQTT or OPC UA tomorrow) decodes with `decode_results` and hands the
results to `stations.intake.accept_results`.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import msgspec
from django.utils.translation import gettext as _

from core.errors import DomainError
from core.validation import (
    IDENTIFIER_MESSAGE,
    TEXT_MESSAGE,
    is_identifier,
    is_storable_text,
    time_window_problem,
)

MAX_RESULTS = 1000
MAX_RESULTS_BODY_BYTES = 16 * 1024 * 1024
MAX_CYCLER_FILE_BYTES = 512 * 1024 * 1024

# JSON has no NaN or Infinity; a number too large for a double is refused here too, rather than
# being read as infinity (the bound also keeps every stored value comparable against limits).
FiniteNumber = Annotated[float, msgspec.Meta(ge=-1e300, le=1e300)]
# API.md: 1 to 200 characters (the inbox's, the run's and the audit trail's columns hold that).
EVENT_ID_MAX_LENGTH = 200
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=60)]
Defect = Literal["short", "insulation_fail", "misalignment", "crack", "delamination", "other"]


class CurveIn(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """One curve: x as seconds from the start of the step, y in `unit`."""

    t_s: list[FiniteNumber]
    values: list[FiniteNumber]
    unit: Annotated[str, msgspec.Meta(max_length=20)] = ""


class StationResultIn(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """One result as a station sends it (API.md RESULT)."""

    # Every string of a result is an identifier or a code (no control characters), save a
    # curve's unit (no NUL): checked after decoding (_text_problems), not by msgspec's pattern
    # constraint, which tripled the time a typical request takes to decode.
    event_id: Annotated[str, msgspec.Meta(min_length=1, max_length=EVENT_ID_MAX_LENGTH)]
    cell: Annotated[str, msgspec.Meta(min_length=1, max_length=50)]
    # RFC 3339 with an offset: a naive time cannot be placed on the plant's timeline. Checked
    # against a window around now after decoding (_problems): msgspec has no "now".
    occurred_at: Annotated[datetime, msgspec.Meta(tz=True)]
    verdict: Literal["pass", "fail"] | None = None
    measurements: dict[Name, FiniteNumber] = {}
    curves: dict[Name, CurveIn] = {}
    material_lots: dict[Name, Annotated[str, msgspec.Meta(min_length=1, max_length=50)]] = {}
    equipment: Annotated[str, msgspec.Meta(max_length=60)] = ""
    # The formation fixture and its channel a result was made in, as registered (lines.Equipment).
    fixture: Annotated[str, msgspec.Meta(max_length=60)] = ""
    channel: Annotated[str, msgspec.Meta(max_length=60)] = ""
    defects: list[Defect] = []
    # The recipe version the equipment ran, as GET /station or track-in served it.
    recipe_version: Annotated[int, msgspec.Meta(ge=1, le=2_000_000_000)] | None = None
    operator: Annotated[str, msgspec.Meta(max_length=60)] = ""
    started_at: Annotated[datetime, msgspec.Meta(tz=True)] | None = None

    def canonical(self) -> bytes:
        """The content a repeat is compared by: field order, key order and number spelling fixed."""
        return msgspec.json.encode(self, order="sorted")

    def content_hash(self) -> str:
        return hashlib.sha256(self.canonical()).hexdigest()


class _ResultsEnvelope(msgspec.Struct, forbid_unknown_fields=True):
    # Raw: each result is decoded on its own below, so every malformed one is reported, not only
    # the first (msgspec stops at the first error of a document).
    results: Annotated[list[msgspec.Raw], msgspec.Meta(min_length=1, max_length=MAX_RESULTS)]


_envelope_decoder = msgspec.json.Decoder(_ResultsEnvelope)
# JSON refuses raw control characters inside strings (so does msgspec): a decoded string holds
# one only where the text escapes it (\n, \u001f, ...). Results are checked string by string
# only when the body holds such an escape; an escaped backslash before an "n" merely costs the
# check.
_CONTROL_CHARACTER_ESCAPE = re.compile(rb"\\(?:[bfnrt]|u00[01][0-9a-fA-F])")
_result_decoder = msgspec.json.Decoder(StationResultIn)


def _field_errors(error: msgspec.ValidationError) -> dict[str, list[str]]:
    """A msgspec error message as the API's {field: [message]} (msgspec names one field)."""
    message = str(error)
    if message.startswith("Object missing required field `"):
        return {message.split("`")[1]: ["This field is required."]}
    if message.startswith("Object contains unknown field `"):
        return {message.split("`")[1]: ["Unknown field."]}
    text, _, path = message.partition(" - at `")
    # A mapping's key (a measurement or curve name, a lot's role): "key` in `$.measurements".
    _, in_key, mapping = path.partition("` in `")
    if in_key:
        path, text = mapping, f"A name: {text}"
    field = path.rstrip("`").removeprefix("$").lstrip(".") or "non_field_errors"
    return {field: [text]}


def _text_problems(result: StationResultIn) -> dict[str, list[str]]:
    """Strings that break core.validation's rules: every string field, mapping key and mapping
    value of a result is an identifier or a code; a curve's unit is text."""
    problems: dict[str, list[str]] = {}
    for field in result.__struct_fields__:
        value = getattr(result, field)
        if isinstance(value, str) and not is_identifier(value):
            problems[field] = [IDENTIFIER_MESSAGE]
        elif isinstance(value, dict):
            if not all(is_identifier(name) for name in value):
                problems[field] = [f"A name: {IDENTIFIER_MESSAGE}"]
            elif not all(is_identifier(v) for v in value.values() if isinstance(v, str)):
                problems[field] = [IDENTIFIER_MESSAGE]
    for name, curve in result.curves.items():
        if not is_storable_text(curve.unit):
            problems[f"curves.{name}.unit"] = [TEXT_MESSAGE]
    return problems


def _problems(result: StationResultIn, now: datetime, *, escaped: bool) -> dict[str, list[str]]:
    """What the msgspec types do not say: curves' lengths agree, times lie in the window, and
    (where the request escapes a control character at all) no string holds one."""
    problems = _text_problems(result) if escaped else {}
    for name, curve in result.curves.items():
        if len(curve.t_s) != len(curve.values):
            problems[f"curves.{name}"] = ["t_s and values must have the same length."]
    for field, value in (("occurred_at", result.occurred_at), ("started_at", result.started_at)):
        if value is not None and (problem := time_window_problem(value, now=now)):
            problems[field] = [problem]
    return problems


def decode_results(body: bytes, *, now: datetime | None = None) -> list[StationResultIn]:
    """A results request body as validated results; raises DomainError `invalid` with per-index
    errors when any result is malformed (the whole request is refused). Times are checked
    against `now` (the time of the request unless given)."""
    try:
        envelope = _envelope_decoder.decode(body)
    except msgspec.ValidationError as error:
        raise DomainError(
            "invalid", _("The request is not valid."), status=400, errors=_field_errors(error)
        ) from None
    except msgspec.DecodeError as error:  # not JSON at all (ValidationError is caught above)
        raise DomainError(
            "invalid", _("The body is not valid JSON: %(error)s") % {"error": error}, status=400
        ) from None
    except RecursionError:
        # Skipping over each result's raw JSON recurses once per level: a body nested thousands
        # deep exhausts the stack. A valid request is six levels deep (results, a result, curves,
        # a curve, its points), so anything this deep is refused whatever it holds.
        raise DomainError(
            "invalid", _("The body is nested deeper than a results request can be."), status=400
        ) from None
    now = now or datetime.now(UTC)
    escaped = _CONTROL_CHARACTER_ESCAPE.search(body) is not None
    results: list[StationResultIn] = []
    errors: dict[str, Any] = {}
    for index, raw in enumerate(envelope.results):
        try:
            result = _result_decoder.decode(raw)
        except msgspec.ValidationError as error:
            errors[str(index)] = _field_errors(error)
            continue
        except msgspec.DecodeError as error:
            # Each result's text is read only here (e.g. invalid UTF-8 inside one of its strings).
            errors[str(index)] = {"non_field_errors": [f"Not valid JSON: {error}"]}
            continue
        results.append(result)
        if problems := _problems(result, now, escaped=escaped):
            errors[str(index)] = problems
    if errors:
        raise DomainError(
            "invalid",
            _("%(invalid)s of %(total)s results are not valid; nothing was stored.")
            % {"invalid": len(errors), "total": len(envelope.results)},
            status=400,
            errors={"results": errors},
        )
    return results
