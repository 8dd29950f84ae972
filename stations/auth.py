"""Station-token authentication for the station API (`Authorization: Bearer <token>`).

Only the station endpoints (`/api/v1/station*`) list this class; every other endpoint keeps the
project's session and personal-token classes, which do not read `Bearer`, so a station token can
never act as a person. A token is looked up by its sha256 hash (the token itself is never stored).

A bad token counts against the client's address (core.throttling: 429 once it fails too often),
and each station's requests are throttled by its code (StationView's throttle_classes).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from django.db import connection
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request

from core.throttling import FixedWindowRateThrottle, counting_failed_authentication
from lines.models import Line, Station
from stations.models import StationToken
from stations.services import hash_token

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
        with counting_failed_authentication(request):
            return self._authenticate_token(header)

    def _authenticate_token(self, header: list[bytes]) -> tuple[StationIdentity, StationToken]:
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("The Authorization header is `Bearer <token>`.")
        try:
            key = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("The token is not valid.") from None
        token = _token_with_station(hash_token(key))
        if token is None:
            raise exceptions.AuthenticationFailed("The token is not valid.")
        if token.revoked_at is not None:
            raise exceptions.AuthenticationFailed("The token has been revoked.")
        return StationIdentity(token.station), token

    def authenticate_header(self, request: Request) -> str:
        # Makes DRF answer 401 (not 403) when credentials are missing or wrong.
        return 'Bearer realm="station"'


def _token_with_station(key_hash: str) -> StationToken | None:
    """The token of `key_hash` with its station and line, or None.

    Every station request asks this. As one hand-written query it costs ~0.15 ms; the same
    select_related queryset spent ~1.7 ms compiling its SQL each time, a third of the request.
    The instances are built with Model.from_db, as the ORM builds them.
    """
    sql, fields = _token_query()
    with connection.cursor() as cursor:
        cursor.execute(sql, [key_hash])
        row = cursor.fetchone()
    if row is None:
        return None
    instances, start = [], 0
    for model, names in zip(TOKEN_MODELS, fields, strict=True):
        instances.append(model.from_db(connection.alias, names, row[start : start + len(names)]))
        start += len(names)
    token, station, line = instances
    station.line, token.station = line, station
    return token


TOKEN_MODELS = (StationToken, Station, Line)


@cache
def _token_query() -> tuple[str, list[list[str]]]:
    fields = [[f.attname for f in model._meta.concrete_fields] for model in TOKEN_MODELS]
    columns = ", ".join(
        f'{alias}."{model._meta.get_field(name).column}"'
        for alias, model, names in zip("tsl", TOKEN_MODELS, fields, strict=True)
        for name in names
    )
    sql = (
        f"SELECT {columns} FROM {StationToken._meta.db_table} t "
        f"JOIN {Station._meta.db_table} s ON s.id = t.station_id "
        f"JOIN {Line._meta.db_table} l ON l.id = s.line_id WHERE t.key_hash = %s"
    )
    return sql, fields


class StationRateThrottle(FixedWindowRateThrottle):
    """Requests per station, its code the key: equipment in a retry loop cannot crowd out the
    other stations (settings: STATION_API_BURST_RATE, STATION_API_SUSTAINED_RATE)."""

    def get_cache_key(self, request: Request, view: object) -> str | None:
        if not isinstance(request.user, StationIdentity):
            return None  # refused before this by IsStation; nothing to count
        return self.cache_format % {"scope": self.scope, "ident": request.user.station.code}


class StationBurstThrottle(StationRateThrottle):
    scope = "station_burst"


class StationSustainedThrottle(StationRateThrottle):
    scope = "station_sustained"


STATION_THROTTLES = [StationBurstThrottle, StationSustainedThrottle]


class IsStation(permissions.BasePermission):
    """Allow only a caller authenticated by a station token."""

    def has_permission(self, request: Request, view: object) -> bool:
        return isinstance(request.user, StationIdentity)


class StationTokenScheme(OpenApiAuthenticationExtension):
    """Documents the station token in the OpenAPI schema (security scheme `stationToken`)."""

    target_class = "stations.auth.StationTokenAuthentication"
    name = "stationToken"

    def get_security_definition(self, auto_schema: object) -> dict:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A station's token from `python manage.py station_token <STATION-CODE>`",
        }
