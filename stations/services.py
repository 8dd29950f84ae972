"""Station credentials: API tokens issued (shown once, stored as a hash) and revoked."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.services import record_event
from lines.models import Station
from stations.models import StationToken


def hash_token(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@transaction.atomic
def issue_station_token(station: Station, *, by: Any, revoke_others: bool = True) -> str:
    """Issue a token for a station and return it; only its hash is stored, so it is shown once."""
    if revoke_others:
        for token in station.tokens.filter(revoked_at__isnull=True):
            revoke_station_token(token, by=by)
    key = secrets.token_urlsafe(32)
    StationToken.objects.create(station=station, key_hash=hash_token(key), prefix=key[:8])
    record_event(
        actor=by,
        verb="station_token_issued",
        subject_type="station",
        subject=station.code,
        data={"prefix": key[:8]},
    )
    return key


@transaction.atomic
def revoke_station_token(token: StationToken, *, by: Any) -> StationToken:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        record_event(
            actor=by,
            verb="station_token_revoked",
            subject_type="station",
            subject=token.station.code,
            data={"prefix": token.prefix},
        )
    return token
