"""What every answer owes its reader whatever went wrong: JSON in the contract's error format under
/api/, a product page with 503 while the database is unreachable, and no caching of what a
signed-in user was shown; the API in the default language."""

from __future__ import annotations

import logging
from collections.abc import Callable
from http import HTTPStatus

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.cache import add_never_cache_headers
from django.utils.functional import LazyObject, empty

from core.api import DATABASE_UNAVAILABLE, UNAVAILABLE_DETAIL, error_body

logger = logging.getLogger(__name__)

API_PREFIX = "/api/"

# The contract's codes for the answers Django itself gives (a URL no pattern matches, a plain
# view's 405, a 500 in DEBUG's technical page): DRF's views answer in the format already.
CODE_BY_STATUS = {
    400: "invalid",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_format",
    429: "throttled",
    500: "server_error",
    503: "unavailable",
}
# Headers of the original answer that still mean something on its JSON replacement.
KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")


def is_api(request: HttpRequest) -> bool:
    return request.path_info.startswith(API_PREFIX)


def unavailable_response(request: HttpRequest) -> HttpResponse:
    """503 with Retry-After: the error format under /api/, else the product's own page.

    The page is rendered without the request, so no context processor runs: the header's reads
    (lines, roles, the ingestion backlog) and the signed-in user would all need the database.
    """
    if is_api(request):
        response: HttpResponse = JsonResponse(
            error_body("unavailable", UNAVAILABLE_DETAIL), status=503
        )
    else:
        response = HttpResponse(
            render_to_string("503.html", {"retry_after": settings.UNAVAILABLE_RETRY_AFTER_SECONDS}),
            status=503,
        )
    response["Retry-After"] = str(settings.UNAVAILABLE_RETRY_AFTER_SECONDS)
    return response


class DatabaseUnavailableMiddleware:
    """A view (or its template) that cannot reach PostgreSQL: 503 and Retry-After, not a 500.

    The API's own views are answered by core.api.exception_handler first; errors raised outside
    any view reach mes.urls' handler500, which answers the same.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, DATABASE_UNAVAILABLE):
            return None
        logger.error("Database unavailable (%s): %s", request.path, exception)
        return unavailable_response(request)


class ApiErrorsAsJsonMiddleware:
    """Under /api/, an error answer that is not JSON (Django's 404 for a path no pattern matches,
    a plain view's 405, DEBUG's pages) is replaced by the contract's `{"code", "detail",
    "errors"}` with the same status."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        if (
            response.status_code < 400
            or not is_api(request)
            or response.streaming
            or "json" in response.get("Content-Type", "")
        ):
            return response
        status = response.status_code
        replacement = JsonResponse(
            error_body(CODE_BY_STATUS.get(status, "error"), _detail(status)), status=status
        )
        for header in KEPT_HEADERS:
            if header in response:
                replacement[header] = response[header]
        return replacement


def _detail(status: int) -> str:
    if status == 404:
        return "There is no such endpoint or object."
    try:
        return f"{HTTPStatus(status).phrase}."
    except ValueError:
        return f"HTTP {status}."


class ApiInEnglishMiddleware:
    """Under /api/ the default language whatever the cookie or Accept-Language say: the services'
    sentences are translated when they are raised, and the API's `detail` is part of a contract
    with programs, which read it in one language (the pages are the ones in Japanese)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if is_api(request):
            translation.activate(settings.LANGUAGE_CODE)
            request.LANGUAGE_CODE = settings.LANGUAGE_CODE
        return self.get_response(request)


class NoStoreWhenSignedInMiddleware:
    """What a signed-in user was shown stays out of every cache, the browser's included (a shared
    control-room PC, a proxy): `Cache-Control: no-store, private` and an Expires in the past."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        if _signed_in(request):
            add_never_cache_headers(response)
        return response


def _signed_in(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)
    if user is None:
        return False
    # An answer that never asked who the user is shows nothing of theirs; and asking now would
    # query the database, which may be the very thing that is down (the 503 page).
    if isinstance(user, LazyObject) and user._wrapped is empty:
        return False
    return bool(user.is_authenticated)
