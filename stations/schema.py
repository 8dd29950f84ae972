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
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from core.errors import DomainError

MAX_RESULTS = 1000
MAX_RESULTS_BODY_BYTES = 16 * 1024 * 1024
MAX_CYCLER_FILE_BYTES = 512 * 1024 * 1024

# JSON has no NaN or Infinity; a number too large for a double is refused here too, rather than
# being read as infinity (the bound also keeps every stored value comparable against limits).
FiniteNumber = Annotated[float, msgspec.Meta(ge=-1e300, le=1e300)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=60)]
Defect = Literal["short", "insulation_fail", "misalignment", "crack", "delamination", "other"]


class CurveIn(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """One curve: x as seconds from the start of the step, y in `unit`."""

    t_s: list[FiniteNumber]
    values: list[FiniteNumber]
    unit: Annotated[str, msgspec.Meta(max_length=20)] = ""


class StationResultIn(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """One result as a station sends it (API.md RESULT)."""

    event_id: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    cell: Annotated[str, msgspec.Meta(min_length=1, max_length=50)]
    # RFC 3339 with an offset: a naive time cannot be placed on the plant's timeline.
    occurred_at: Annotated[datetime, msgspec.Meta(tz=True)]
    verdict: Literal["pass", "fail"] | None = None
    measurements: dict[Name, FiniteNumber] = {}
    curves: dict[Name, CurveIn] = {}
    material_lots: dict[Name, Annotated[str, msgspec.Meta(min_length=1, max_length=50)]] = {}
    equipment: Annotated[str, msgspec.Meta(max_length=60)] = ""
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
_result_decoder = msgspec.json.Decoder(StationResultIn)


def _field_errors(error: msgspec.ValidationError) -> dict[str, list[str]]:
    """A msgspec error message as the API's {field: [message]} (msgspec names one field)."""
    message = str(error)
    if message.startswith("Object missing required field `"):
        return {message.split("`")[1]: ["This field is required."]}
    if message.startswith("Object contains unknown field `"):
        return {message.split("`")[1]: ["Unknown field."]}
    text, _, path = message.partition(" - at `")
    field = path.rstrip("`").removeprefix("$").lstrip(".") or "non_field_errors"
    return {field: [text]}


def decode_results(body: bytes) -> list[StationResultIn]:
    """A results request body as validated results; raises DomainError `invalid` with per-index
    errors when any result is malformed (the whole request is refused)."""
    try:
        envelope = _envelope_decoder.decode(body)
    except msgspec.ValidationError as error:
        raise DomainError(
            "invalid", "The request is not valid.", status=400, errors=_field_errors(error)
        ) from None
    except msgspec.DecodeError as error:  # not JSON at all (ValidationError is caught above)
        raise DomainError("invalid", f"The body is not valid JSON: {error}", status=400) from None
    results: list[StationResultIn] = []
    errors: dict[str, Any] = {}
    for index, raw in enumerate(envelope.results):
        try:
            results.append(_result_decoder.decode(raw))
        except msgspec.ValidationError as error:
            errors[str(index)] = _field_errors(error)
            continue
        curve_errors = {
            f"curves.{name}": ["t_s and values must have the same length."]
            for name, curve in results[-1].curves.items()
            if len(curve.t_s) != len(curve.values)
        }
        if curve_errors:
            errors[str(index)] = curve_errors
    if errors:
        raise DomainError(
            "invalid",
            f"{len(errors)} of {len(envelope.results)} results are not valid; nothing was stored.",
            status=400,
            errors={"results": errors},
        )
    return results
