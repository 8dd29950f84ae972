"""`POST /api/v1/env/{zone}/readings`: dry-room readings over HTTP, into the same intake as MQTT.

Who may send: an engineer (session or personal token) with the permission to record readings,
or a sensor gateway: a user of the `sensor_gateway` group, whose personal token allows nothing
else. Not a station token: a gateway reports for a room, not as one station in it.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from core import roles
from core.api import ApiErrorSerializer, EngineerAPIView, engineer_errors
from environment.intake import MAX_READINGS, accept_readings


class ReadingSerializer(serializers.Serializer):
    sensor = serializers.CharField(max_length=60, help_text="The sensor's id")
    at = serializers.DateTimeField(help_text="RFC 3339 with offset: when it was read")
    dew_point_c = serializers.FloatField(required=False, allow_null=True)
    temperature_c = serializers.FloatField(required=False, allow_null=True)
    h2s_ppm = serializers.FloatField(required=False, allow_null=True)


class ReadingsSerializer(serializers.Serializer):
    readings = ReadingSerializer(many=True, help_text=f"1 to {MAX_READINGS} readings")


class ReadingsAcceptedSerializer(serializers.Serializer):
    accepted = serializers.IntegerField(help_text="Readings stored")
    duplicates = serializers.IntegerField(help_text="Readings stored before (zone, sensor, at)")
    excursions = serializers.IntegerField(
        help_text="Excursions that count and that these readings started, widened or confirmed"
    )


class ZoneReadingsView(EngineerAPIView):
    permissions = {"POST": roles.RECORD_READINGS}

    @extend_schema(
        operation_id="env_readings_create",
        request=ReadingsSerializer,
        responses={
            202: ReadingsAcceptedSerializer,
            **engineer_errors(400, 401, 403),
            404: OpenApiResponse(ApiErrorSerializer, description="unknown_zone"),
            **engineer_errors(415),
        },
        examples=[
            OpenApiExample(
                "A dew-point sensor",
                request_only=True,
                value={
                    "readings": [
                        {"sensor": "DP-1", "at": "2026-11-30T09:00:00+09:00", "dew_point_c": -52.1}
                    ]
                },
            )
        ],
        description="Store and judge a zone's sensor readings: by their own `at`, whenever they "
        "arrive; a repeat of (sensor, at) is a duplicate. A malformed reading refuses the whole "
        "request (400 `invalid`, per-index errors under `errors.readings`), nothing stored.",
    )
    def post(self, request: Request, zone: str) -> Response:
        return Response(accept_readings(zone, request.data), status=status.HTTP_202_ACCEPTED)
