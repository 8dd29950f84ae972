"""The API's error format: every 4xx/5xx body is {"code", "detail", "errors"}."""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from django import db
from django.conf import settings
from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions, generics, serializers, status
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from core.errors import DomainError

logger = logging.getLogger(__name__)

# DRF's own codes mapped to the contract's machine codes.
_CODES = {
    "not_authenticated": "not_authenticated",
    "authentication_failed": "not_authenticated",
    "parse_error": "invalid",
    "invalid": "invalid",
    "unsupported_media_type": "unsupported_format",
    "throttled": "throttled",
    "permission_denied": "permission_denied",
    "not_found": "not_found",
    "method_not_allowed": "method_not_allowed",
}


# What the database driver raises while PostgreSQL cannot be reached (refused, restarting, the
# connection lost): a request that meets it is answered 503 `unavailable` with Retry-After, by the
# handler below for the API's views and by core.middleware for everything else.
DATABASE_UNAVAILABLE = (
    db.OperationalError,
    db.InterfaceError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
)
UNAVAILABLE_DETAIL = "The database cannot be reached; try again shortly."


def error_body(code: str, detail: str, errors: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"code": code, "detail": detail, "errors": errors or {}}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DomainError):
        return Response(error_body(exc.code, exc.detail, exc.errors), status=exc.status)
    if isinstance(exc, DATABASE_UNAVAILABLE):
        logger.error("Database unavailable (%s): %s", context["request"].path, exc)
        return Response(
            error_body("unavailable", UNAVAILABLE_DETAIL),
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": str(settings.UNAVAILABLE_RETRY_AFTER_SECONDS)},
        )
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        errors = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        response.data = error_body("invalid", "The request is not valid.", errors)
        response.status_code = status.HTTP_400_BAD_REQUEST
        return response
    detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
    drf_code = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
    code = _CODES.get(drf_code if isinstance(drf_code, str) else "invalid", "error")
    response.data = error_body(code, str(detail))
    return response


# ---------------------------------------------------------------- the engineers' API


class ApiErrorSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Machine code: invalid, not_found, permission_denied, …")
    detail = serializers.CharField(help_text="A human sentence")
    errors = serializers.DictField(child=serializers.JSONField(), help_text="Field errors")


# What any request may be answered, whatever the operation: the address failed authentication too
# often (core.throttling), or PostgreSQL cannot be reached (DATABASE_UNAVAILABLE). Every
# operation's documented responses include them (engineer_errors, and the station API's _errors).
ANY_OPERATION = {
    429: "throttled: too many requests, or this address failed authentication too often; "
    "wait the Retry-After header's seconds and send the same request again",
    503: "unavailable: the database cannot be reached; try again after Retry-After seconds",
}

ENGINEER_ERRORS = {
    code: OpenApiResponse(ApiErrorSerializer, description=text)
    for code, text in {
        400: "invalid: field errors under `errors` (the body, or a filter's value); or a "
        "service's code (unknown_lot, reason_required)",
        401: "not_authenticated: no credentials, or a token that is unknown, expired or revoked",
        403: "permission_denied: the user's roles do not allow it",
        404: "not_found: no such object, or (lists) a page past the last",
        409: "a forbidden transition (invalid_transition) or another business rule",
        415: "unsupported_format: the body is not JSON, a form or multipart",
        **ANY_OPERATION,
    }.items()
}


def engineer_errors(*codes: int) -> dict[int, OpenApiResponse]:
    """The error answers of an engineers' operation: those named, then those of ANY_OPERATION."""
    return {code: ENGINEER_ERRORS[code] for code in (*codes, *ANY_OPERATION)}


class RolePermission(BasePermission):
    """The view's `permissions` maps an HTTP method to the permission it needs (core.roles)."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        if request.method.lower() not in view.http_method_names or not hasattr(
            view, request.method.lower()
        ):
            # Signed in: the view answers 405 (with Allow) for a method it does not have.
            return bool(request.user and request.user.is_authenticated)
        needed = view.permissions.get(request.method, view.permissions.get("GET"))
        return bool(
            request.user and request.user.is_authenticated and request.user.has_perm(needed)
        )


class EngineerAPIView(APIView):
    # Session or personal token, as settings.REST_FRAMEWORK says; never a station token.
    permission_classes = [RolePermission]
    permissions: dict[str, str] = {}


class EngineerListView(EngineerAPIView, generics.ListAPIView):
    pass
