"""Engineers' personal API tokens: issued (the key shown once, only its SHA-512 digest stored),
expiring after settings.PERSONAL_TOKEN_DAYS, and revoked by deleting them."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from knox.models import AuthToken

from audit.services import record_event

# How a token is named on its page and in the audit trail: the first characters of its key,
# which knox keeps in clear (token_key) to find the digest to compare.
SHOWN_KEY_CHARACTERS = 8


def token_label(token: AuthToken) -> str:
    return token.token_key[:SHOWN_KEY_CHARACTERS]


@transaction.atomic
def issue_personal_token(user: User, *, by: Any) -> tuple[AuthToken, str]:
    """A new token for `user` and its key, which is never stored: the caller shows it once."""
    token, key = AuthToken.objects.create(user=user)
    record_event(
        actor=by,
        verb="personal_token_issued",
        subject_type="user",
        subject=user.get_username(),
        data={"token": token_label(token), "expiry": token.expiry.isoformat()},
    )
    return token, key


@transaction.atomic
def revoke_personal_token(token: AuthToken, *, by: Any) -> None:
    """Revoke a token: it is deleted, so the next request that sends it gets 401."""
    label, user = token_label(token), token.user
    token.delete()
    record_event(
        actor=by,
        verb="personal_token_revoked",
        subject_type="user",
        subject=user.get_username(),
        data={"token": label},
    )
