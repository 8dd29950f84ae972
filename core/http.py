"""Reading request bodies with a bound: what a client sends never decides how much is held."""

from __future__ import annotations

from django.http import HttpRequest
from django.utils.translation import gettext as _

from core.errors import DomainError


def read_capped_body(request: HttpRequest, limit: int, *, advice: str = "") -> bytes:
    """The request body, refused with 413 before reading it when it is larger than `limit`.

    A declared Content-Length over the limit is refused without reading a byte. A chunked body
    (no Content-Length; Django would read it as empty) is read from the WSGI stream up to the
    limit and refused as soon as it passes it, so it is never held whole in memory.
    """
    too_large = DomainError(
        "payload_too_large",
        (
            _("The body is larger than %(limit)s MiB; %(advice)s.")
            if advice
            else _("The body is larger than %(limit)s MiB.")
        )
        % {"limit": limit // (1024 * 1024), "advice": advice},
        status=413,
    )
    length = declared_length(request)
    if length is not None:
        if length > limit:
            raise too_large
        return request.body
    if "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
        stream, parts, size = request.META["wsgi.input"], [], 0
        while chunk := stream.read(64 * 1024):
            size += len(chunk)
            if size > limit:
                raise too_large
            parts.append(chunk)
        return b"".join(parts)
    return request.body


def declared_length(request: HttpRequest) -> int | None:
    """The body's length as the client declares it (Content-Length), None when it declares none;
    a header that is not a whole number is the client's error (400 invalid)."""
    declared = request.META.get("CONTENT_LENGTH") or ""
    if not declared:
        return None
    try:
        length = int(declared)
    except ValueError:
        raise DomainError("invalid", _("Content-Length is not a number."), status=400) from None
    if length < 0:
        raise DomainError("invalid", _("Content-Length is negative."), status=400)
    return length
