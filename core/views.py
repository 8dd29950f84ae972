"""The health check, and the error handlers mes.urls names (JSON under /api/, pages elsewhere)."""

from __future__ import annotations

import functools
import logging
import sys

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, HttpResponseServerError, JsonResponse
from django.template.loader import render_to_string
from django.views import defaults
from drf_spectacular.utils import OpenApiResponse, extend_schema
from kombu import Connection
from rest_framework import serializers
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.permissions import AllowAny
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from core.api import ANY_OPERATION, DATABASE_UNAVAILABLE, ApiErrorSerializer, error_body
from core.middleware import is_api, unavailable_response

logger = logging.getLogger(__name__)

# How long the health check waits for the broker: a load balancer's probe times out in seconds.
BROKER_TIMEOUT_S = 1.0


class JsonWhateverIsAccepted(BaseContentNegotiation):
    """JSON whatever the Accept header says: a probe's header must not make a health check 406."""

    def select_parser(self, request: Request, parsers: list) -> None:
        return None  # nothing to read: GET and HEAD only

    def select_renderer(
        self, request: Request, renderers: list[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        return renderers[0], renderers[0].media_type


class HealthCheckView(APIView):
    """Base of the health checks: anyone may ask (no credentials, no throttle), GET and HEAD only;
    a DRF view so that the API's schema documents it."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []
    renderer_classes = [JSONRenderer]
    content_negotiation_class = JsonWhateverIsAccepted
    http_method_names = ["get", "head"]


class HealthSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ok"])
    database = serializers.ChoiceField(choices=["ok"])
    broker = serializers.ChoiceField(choices=["ok"])


class HealthView(HealthCheckView):
    @extend_schema(
        tags=["health"],
        summary="Health check: the database and the broker answer",
        responses={
            200: HealthSerializer,
            503: OpenApiResponse(
                ApiErrorSerializer,
                description=f"unavailable: the database or the broker is unreachable (named under "
                f"`errors`); {ANY_OPERATION[503]}",
            ),
        },
    )
    def get(self, request: Request) -> JsonResponse:
        """For the container health check and load balancers: 200 while PostgreSQL answers a
        query and the Celery broker a ping; else 503 in the error format, naming which is
        unreachable."""
        return _health()


health = HealthView.as_view()


def _health() -> JsonResponse:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DATABASE_UNAVAILABLE as error:
        logger.error("Health: the database is unreachable: %s", error)
        return _unavailable("database", "The database is unreachable.")
    if not broker_reachable():
        return _unavailable(
            "broker", "The broker is unreachable: station results are stored but not applied."
        )
    return JsonResponse({"status": "ok", "database": "ok", "broker": "ok"})


def _unavailable(part: str, detail: str) -> JsonResponse:
    response = JsonResponse(error_body("unavailable", detail, {part: ["unreachable"]}), status=503)
    response["Retry-After"] = str(settings.UNAVAILABLE_RETRY_AFTER_SECONDS)
    return response


def broker_reachable() -> bool:
    url = settings.CELERY_BROKER_URL
    if url.startswith(("redis://", "rediss://")):
        try:
            return bool(_redis(url).ping())
        except redis.RedisError as error:
            logger.error("Health: the broker is unreachable: %s", error)
            return False
    # Other transports (the demo's filesystem one): connect as a worker would.
    try:
        with Connection(
            url,
            transport=getattr(settings, "CELERY_BROKER_TRANSPORT", None),
            transport_options=getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}),
            connect_timeout=BROKER_TIMEOUT_S,
        ) as broker:
            broker.ensure_connection(max_retries=1, interval_start=0, timeout=BROKER_TIMEOUT_S)
    except Exception as error:
        logger.error("Health: the broker is unreachable: %s", error)
        return False
    return True


@functools.cache
def _redis(url: str) -> redis.Redis:
    # One client (and connection pool) per process: a probe every few seconds reuses it.
    return redis.Redis.from_url(
        url, socket_connect_timeout=BROKER_TIMEOUT_S, socket_timeout=BROKER_TIMEOUT_S
    )


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler404: the error format under /api/, templates/404.html elsewhere."""
    if is_api(request):
        return JsonResponse(
            error_body("not_found", "There is no such endpoint or object."), status=404
        )
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500. Django calls it while handling the exception, so it can tell a database that
    cannot be reached (raised outside a view, e.g. by a middleware: 503) from a fault (500).
    Nothing here reads the database."""
    if isinstance(sys.exc_info()[1], DATABASE_UNAVAILABLE):
        return unavailable_response(request)
    if is_api(request):
        return JsonResponse(
            error_body("server_error", "Something went wrong on our side; it has been logged."),
            status=500,
        )
    return HttpResponseServerError(render_to_string("500.html"))
