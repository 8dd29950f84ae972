"""Serializers of the station API.

Results are validated by msgspec (stations/schema.py) for speed; the serializers for them here
only document the shape in the OpenAPI schema, and tests/ingestion/test_openapi_schema.py checks
that examples valid for msgspec are valid for the schema too. The small bodies (track-in, state)
are validated by these serializers directly.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from batches.models import ProcessRun
from core.validation import validate_identifier, validate_identifier_keys
from formation.cycler import FORMAT_NAMES
from lines.models import Station
from stations.models import InboxEntry
from stations.state import StateSerializer  # noqa: F401 - documented with the others

DEFECTS = ["short", "insulation_fail", "misalignment", "crack", "delamination", "other"]


class ErrorSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Machine code, e.g. invalid, unknown_cell, wrong_step")
    detail = serializers.CharField(help_text="A human sentence")
    errors = serializers.DictField(
        child=serializers.JSONField(), help_text="Field errors; per-index under `results`"
    )


class ParameterSerializer(serializers.Serializer):
    unit = serializers.CharField(allow_blank=True)
    target = serializers.FloatField(allow_null=True)
    min = serializers.FloatField(allow_null=True, help_text="Inclusive; null: no lower limit")
    max = serializers.FloatField(allow_null=True, help_text="Inclusive; null: no upper limit")


class RecipeSerializer(serializers.Serializer):
    name = serializers.CharField()
    version = serializers.IntegerField()
    parameters = serializers.DictField(child=ParameterSerializer())


class StationSerializer(serializers.Serializer):
    code = serializers.CharField()
    kind = serializers.CharField()
    line = serializers.CharField()
    state = serializers.ChoiceField(choices=Station.State.values)
    recipe = RecipeSerializer(allow_null=True, help_text="The active recipe version to run")


class TrackInSerializer(serializers.Serializer):
    cell = serializers.CharField(
        min_length=1, max_length=50, validators=[validate_identifier], help_text="The cell's serial"
    )
    material_lots = serializers.DictField(
        child=serializers.CharField(min_length=1, max_length=50, validators=[validate_identifier]),
        required=False,
        validators=[validate_identifier_keys],
        help_text="ROLE: LOT-CODE the station will load for this cell, checked now: a lot that "
        "is unknown or of another role is 400, one that may not be used 409 lot_unusable, "
        "one on hold (or cut from a held lot) 409 lot_on_hold, one other than the cell's experiment "
        "arm names 409 wrong_lot_for_arm",
    )


class TrackInResponseSerializer(serializers.Serializer):
    cell = serializers.CharField()
    batch = serializers.CharField()
    step = serializers.CharField(help_text="The station kind of the step to do now")
    recipe = RecipeSerializer()


class CurveSerializer(serializers.Serializer):
    t_s = serializers.ListField(child=serializers.FloatField(), help_text="Seconds from start")
    values = serializers.ListField(child=serializers.FloatField(), help_text="Same length as t_s")
    unit = serializers.CharField(required=False, max_length=20)


class StationResultSerializer(serializers.Serializer):
    event_id = serializers.CharField(
        min_length=1,
        max_length=200,
        help_text="Unique per station; the idempotency key: a repeat is a duplicate",
    )
    cell = serializers.CharField(min_length=1, max_length=50)
    occurred_at = serializers.DateTimeField(help_text="RFC 3339 with an offset")
    verdict = serializers.ChoiceField(
        choices=ProcessRun.Verdict.values,
        required=False,
        allow_null=True,
        help_text="The equipment's own",
    )
    measurements = serializers.DictField(
        child=serializers.FloatField(), required=False, help_text="Names as in the recipe"
    )
    curves = serializers.DictField(child=CurveSerializer(), required=False)
    material_lots = serializers.DictField(
        child=serializers.CharField(min_length=1, max_length=50),
        required=False,
        help_text="ROLE: LOT-CODE",
    )
    equipment = serializers.CharField(
        max_length=60, required=False, help_text="Press cycle, vessel load or fixture id"
    )
    fixture = serializers.CharField(
        max_length=60, required=False, help_text="The formation fixture's registered code"
    )
    channel = serializers.CharField(
        max_length=60, required=False, help_text="The fixture's or cycler's channel code"
    )
    defects = serializers.ListField(child=serializers.ChoiceField(choices=DEFECTS), required=False)
    recipe_version = serializers.IntegerField(
        min_value=1,
        required=False,
        allow_null=True,
        help_text="The recipe version the equipment ran, as GET /station or track-in served it; "
        "without it, the version in force for the cell's design at occurred_at judges the result",
    )
    operator = serializers.CharField(max_length=60, required=False, help_text="Who ran it (badge)")
    started_at = serializers.DateTimeField(
        required=False, allow_null=True, help_text="When processing of this cell began"
    )


class ResultsRequestSerializer(serializers.Serializer):
    results = serializers.ListField(child=StationResultSerializer(), min_length=1, max_length=1000)


class ResultsAcceptedSerializer(serializers.Serializer):
    accepted = serializers.IntegerField(help_text="Results stored now")
    duplicates = serializers.IntegerField(help_text="Repeats of results stored before")


class ViolationSerializer(serializers.Serializer):
    parameter = serializers.CharField()
    value = serializers.FloatField(allow_null=True)
    min = serializers.FloatField(allow_null=True)
    max = serializers.FloatField(allow_null=True)
    problem = serializers.CharField(help_text="out_of_spec or missing")


class ResultStatusSerializer(serializers.Serializer):
    event_id = serializers.CharField()
    kind = serializers.ChoiceField(choices=InboxEntry.Kind.values)
    status = serializers.ChoiceField(choices=InboxEntry.Status.values)
    reason = serializers.CharField(allow_blank=True)
    reason_code = serializers.CharField(
        allow_blank=True, help_text="Machine code of the reason, e.g. wrong_step, waiting"
    )
    outcome = serializers.ChoiceField(choices=ProcessRun.Verdict.values, allow_null=True)
    violations = ViolationSerializer(many=True)
    received_at = serializers.DateTimeField()
    processed_at = serializers.DateTimeField(allow_null=True)


class StateAcceptedSerializer(serializers.Serializer):
    state = serializers.CharField()
    occurred_at = serializers.DateTimeField()


@extend_schema_field(OpenApiTypes.BINARY)
class UploadedFileField(serializers.FileField):
    """A file sent as a multipart part: its bytes (a FileField reads as a URL by default)."""


class CyclerFileSerializer(serializers.Serializer):
    file = UploadedFileField(help_text="The raw cycler file, up to 512 MiB")
    cell = serializers.CharField(min_length=1, max_length=50, validators=[validate_identifier])
    event_id = serializers.CharField(min_length=1, max_length=200, validators=[validate_identifier])
    format = serializers.ChoiceField(
        choices=FORMAT_NAMES,
        required=False,
        help_text="The file's format (short names: mpr, mpt, nda, ndax, arbin, maccor); "
        "without it, the format is detected from the content",
    )
    fixture = serializers.CharField(
        max_length=60,
        required=False,
        validators=[validate_identifier],
        help_text="The formation fixture's registered code",
    )
    channel = serializers.CharField(
        max_length=60,
        required=False,
        validators=[validate_identifier],
        help_text="The fixture's or cycler's channel code",
    )


# ---------------------------------------------------------------- station results not applied


class UnappliedResultSerializer(serializers.Serializer):
    station = serializers.CharField(source="station.code")
    line = serializers.CharField(source="station.line.code")
    event_id = serializers.CharField()
    cell = serializers.CharField(
        source="cell_serial", help_text="The serial as the station sent it"
    )
    kind = serializers.ChoiceField(choices=InboxEntry.Kind.choices)
    status = serializers.ChoiceField(
        choices=[InboxEntry.Status.REJECTED, InboxEntry.Status.PENDING]
    )
    reason_code = serializers.CharField(
        help_text="Why rejected (unknown_cell, wrong_step, on_hold, ...) or still pending "
        "(waiting, retrying; empty while queued)"
    )
    reason = serializers.CharField()
    attempts = serializers.IntegerField()
    received_at = serializers.DateTimeField()
    processed_at = serializers.DateTimeField(allow_null=True, help_text="When it was rejected")


class ResultRefSerializer(serializers.Serializer):
    station = serializers.CharField(min_length=1, max_length=40)
    event_id = serializers.CharField(min_length=1, max_length=200)


class RequeueRequestSerializer(serializers.Serializer):
    results = serializers.ListField(child=ResultRefSerializer(), min_length=1, max_length=1000)
    reason = serializers.CharField(min_length=1, max_length=1000, help_text="Why; required")


class RequeueResponseSerializer(serializers.Serializer):
    requeued = serializers.IntegerField(help_text="Results sent again (those still rejected)")
