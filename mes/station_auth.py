"""Station-token authentication for the station API (`Authorization: Bearer <token>`).

Only the station endpoints (`/api/v1/station*`) list this class; every other endpoint keeps the
project's session and personal-token classes, which do not read `Bearer`, so a station token can
never act as a person. A token is looked up by its sha256 hash (the token itself is never stored).
"""

from __future__ import annotations

from dataclasses import dataclass

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request

from lines.models import Station, StationToken
from lines.services import hash_token

KEYWORD = b"bearer"


@dataclass(frozen=True)
class StationIdentity:
    """The authenticated caller of the station API: one station, acting only as itself."""

    station: Station

    is_authenticated = True
    is_anonymous = False
    is_staff = False
    is_superuser = False

    @property
    def actor(self) -> str:
        """How the audit trail names the station."""
        return f"station:{self.station.code}"

    def get_username(self) -> str:
        return self.actor

    def __str__(self) -> str:
        return self.actor


class StationTokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[StationIdentity, StationToken] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != KEYWORD:
            return None  # no credentials: the permission check answers 401 not_authenticated
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("The Authorization header is `Bearer <token>`.")
        try:
            key = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("The token is not valid.") from None
        token = (
            StationToken.objects.select_related("station__line")
            .filter(key_hash=hash_token(key))
            .first()
        )
        if token is None:
            raise exceptions.AuthenticationFailed("The token is not valid.")
        if token.revoked_at is not None:
            raise exceptions.AuthenticationFailed("The token has been revoked.")
        return StationIdentity(token.station), token

    def authenticate_header(self, request: Request) -> str:
        # Makes DRF answer 401 (not 403) when credentials are missing or wrong.
        return 'Bearer realm="station"'


class IsStation(permissions.BasePermission):
    """Allow only a caller authenticated by a station token."""

    def has_permission(self, request: Request, view: object) -> bool:
        return isinstance(request.user, StationIdentity)


class StationTokenScheme(OpenApiAuthenticationExtension):
    """Documents the station token in the OpenAPI schema (security scheme `stationToken`)."""

    target_class = "mes.station_auth.StationTokenAuthentication"
    name = "stationToken"

    def get_security_definition(self, auto_schema: object) -> dict:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A station's token from `python manage.py station_token <STATION-CODE>`",
        }
