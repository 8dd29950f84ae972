from __future__ import annotations

from django.conf import settings
from django.http import JsonResponse
from drf_spectacular.utils import OpenApiResponse, PolymorphicProxySerializer, extend_schema
from rest_framework import serializers
from rest_framework.request import Request

from core.api import ANY_OPERATION, ApiErrorSerializer
from core.views import HealthCheckView
from stations import bridge_health, selectors


class MqttBridgeHealthSerializer(serializers.Serializer):
    running = serializers.BooleanField(help_text="Its heartbeat is recent (the process is up)")
    connected = serializers.BooleanField(help_text="Running and connected to the broker")
    connected_since = serializers.DateTimeField(allow_null=True)
    last_message_at = serializers.DateTimeField(allow_null=True)
    heartbeat_at = serializers.DateTimeField()
    counts = serializers.DictField(
        child=serializers.IntegerField(),
        help_text="Messages accepted, refused (error replies) and ignored; connections made; "
        "database errors waited out",
    )


class IngestionHealthSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ok", "behind"])
    pending = serializers.IntegerField(help_text="Results received and not applied yet")
    oldest_pending_s = serializers.FloatField(
        allow_null=True, help_text="Age of the oldest of them in seconds; null when none"
    )
    behind_after_s = serializers.IntegerField(
        help_text="The age beyond which the workers count as behind (INGEST_BEHIND_AFTER_SECONDS)"
    )
    mqtt_bridge = MqttBridgeHealthSerializer(
        allow_null=True, help_text="The MQTT bridge's last heartbeat; null when none ever ran"
    )


class IngestionHealthView(HealthCheckView):
    @extend_schema(
        tags=["health"],
        summary="Monitoring: do the workers keep up with the stations?",
        responses={
            200: IngestionHealthSerializer,
            503: OpenApiResponse(
                PolymorphicProxySerializer(
                    component_name="IngestionUnavailable",
                    serializers=[IngestionHealthSerializer, ApiErrorSerializer],
                    resource_type_field_name=None,
                ),
                description="Behind: the same figures with status `behind`; or, in the error "
                f"format, {ANY_OPERATION[503]}",
            ),
        },
    )
    def get(self, request: Request) -> JsonResponse:
        """For monitoring: 200 while the workers keep up with the stations, 503 once a result has
        waited over INGEST_BEHIND_AFTER_SECONDS (workers or broker stopped); counts and ages
        only."""
        backlog = selectors.ingestion_backlog()
        age = backlog.oldest_age_s()
        return JsonResponse(
            {
                "status": "behind" if backlog.behind else "ok",
                "pending": backlog.pending,
                "oldest_pending_s": None if age is None else round(age, 1),
                "behind_after_s": settings.INGEST_BEHIND_AFTER_SECONDS,
                # Informative: results it has not stored are on the broker, not unapplied here.
                "mqtt_bridge": bridge_health.read(),
            },
            status=503 if backlog.behind else 200,
        )


ingestion_health = IngestionHealthView.as_view()
