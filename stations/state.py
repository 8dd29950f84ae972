"""The shape of a station's state report (POST /api/v1/station/state, mes/v1/{station}/state).

A DRF serializer: the body is small, and the same class documents it in the OpenAPI schema.
"""

from __future__ import annotations

from rest_framework import serializers

from core.validation import validate_time_window
from lines.models import Station


class StateSerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=Station.State.values)
    reason = serializers.CharField(
        max_length=200,
        required=False,
        allow_blank=True,
        default="",
        help_text="Free text, or a downtime-reason code (then linked to the catalogue)",
    )
    occurred_at = serializers.DateTimeField(
        required=False,
        validators=[validate_time_window],
        help_text="RFC 3339 with an offset; now when left out. A past time lands in its place "
        "in the history and changes the current state only if it is the latest.",
    )
    reason_code = serializers.SlugField(
        max_length=40,
        required=False,
        allow_blank=True,
        default="",
        help_text="A downtime-reason code of the catalogue (400 invalid if unknown)",
    )

    def validate_occurred_at(self, value):
        raw = self.initial_data.get("occurred_at", "")
        if isinstance(raw, str) and not _has_offset(raw):
            raise serializers.ValidationError("The time needs an offset (Z or +09:00).")
        return value


def _has_offset(text: str) -> bool:
    tail = text.strip()[-6:]
    return text.strip().endswith(("Z", "z")) or tail[0] in "+-" and ":" in tail
