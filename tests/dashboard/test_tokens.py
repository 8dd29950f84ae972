"""Personal API tokens: issued from the user's own page or `manage.py drf_create_token`, shown once,
stored only as a digest, expiring, revocable; `Authorization: Token <key>` on the engineers' API."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from audit.models import Event

TOKENS = "/accounts/tokens/"
REVOKE = "/accounts/tokens/revoke"


def api_with(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def shown_key(response) -> str:
    found = re.search(rb'<code id="new-token-key">([0-9a-f]+)</code>', response.content)
    assert found, "the new key is on the page"
    return found.group(1).decode()


@pytest.fixture
def own_cache(settings) -> None:
    # The failed-authentication throttle counts in the cache: a prefix of this test's own.
    import uuid

    settings.CACHES = {
        "default": {**settings.CACHES["default"], "KEY_PREFIX": f"test-{uuid.uuid4().hex}"}
    }


pytestmark = pytest.mark.usefixtures("own_cache")


def test_the_header_links_the_users_name_to_their_tokens(signed_in, operator):
    response = signed_in(operator).get("/")
    assert f'href="{TOKENS}"'.encode() in response.content


def test_a_user_issues_a_token_sees_it_once_and_uses_it(plant, signed_in, line_engineer):
    browser = signed_in(line_engineer)
    assert b"No tokens." in browser.get(TOKENS).content

    response = browser.post(TOKENS)
    assert response.status_code == 200
    key = shown_key(response)
    assert len(key) > 40  # API.md: the key may be longer than 40 characters

    token = AuthToken.objects.get(user=line_engineer)
    # Stored as a digest: the key itself is in no column (knox keeps its first 15 characters
    # in clear to find the row).
    assert token.digest != key and len(token.digest) == 128
    assert key not in {token.digest, token.token_key} and key.startswith(token.token_key)
    expected = timezone.now() + timedelta(days=settings.PERSONAL_TOKEN_DAYS)
    assert abs(token.expiry - expected) < timedelta(minutes=1)
    assert Event.objects.filter(verb="personal_token_issued", subject=line_engineer.username)

    listed = browser.get(TOKENS)
    assert key.encode() not in listed.content  # shown once
    assert token.token_key[:8].encode() in listed.content

    response = api_with(key).get("/api/v1/lines")
    assert response.status_code == 200


def test_a_revoked_token_is_refused(plant, signed_in, line_engineer):
    browser = signed_in(line_engineer)
    key = shown_key(browser.post(TOKENS))
    token = AuthToken.objects.get(user=line_engineer)

    response = browser.post(REVOKE, {"token": token.digest})
    assert response.status_code == 302
    assert not AuthToken.objects.filter(user=line_engineer).exists()
    assert Event.objects.filter(verb="personal_token_revoked", subject=line_engineer.username)

    refused = api_with(key).get("/api/v1/lines")
    assert refused.status_code == 401
    assert refused.json()["code"] == "not_authenticated"


def test_an_expired_token_is_refused_and_forgotten(plant, line_engineer):
    token, key = AuthToken.objects.create(user=line_engineer)
    AuthToken.objects.filter(pk=token.pk).update(expiry=timezone.now() - timedelta(seconds=1))
    refused = api_with(key).get("/api/v1/lines")
    assert refused.status_code == 401
    assert refused.json()["code"] == "not_authenticated"
    assert not AuthToken.objects.filter(pk=token.pk).exists()


def test_an_expired_token_is_marked_on_the_page(plant, signed_in, line_engineer):
    token, _ = AuthToken.objects.create(user=line_engineer)
    AuthToken.objects.filter(pk=token.pk).update(expiry=timezone.now() - timedelta(days=1))
    assert b"expired" in signed_in(line_engineer).get(TOKENS).content


def test_nobody_revokes_or_sees_anothers_token(plant, signed_in, line_engineer, quality_engineer):
    theirs, _ = AuthToken.objects.create(user=quality_engineer)
    browser = signed_in(line_engineer)
    assert theirs.token_key[:8].encode() not in browser.get(TOKENS).content
    response = browser.post(REVOKE, {"token": theirs.digest})
    assert response.status_code == 404
    assert AuthToken.objects.filter(pk=theirs.pk).exists()
    assert not Event.objects.filter(verb="personal_token_revoked").exists()


def test_the_page_needs_a_signed_in_user(plant, signed_in):
    anonymous = signed_in(None)
    assert anonymous.get(TOKENS)["Location"].startswith("/accounts/login/")
    assert anonymous.post(TOKENS).status_code == 302
    assert not AuthToken.objects.exists()


def test_revoking_needs_a_post(plant, signed_in, line_engineer):
    token, _ = AuthToken.objects.create(user=line_engineer)
    assert signed_in(line_engineer).get(REVOKE, {"token": token.digest}).status_code == 405
    assert AuthToken.objects.filter(pk=token.pk).exists()


def test_drf_create_token_prints_the_key_as_the_last_word(plant, line_engineer):
    out = io.StringIO()
    call_command("drf_create_token", line_engineer.username, stdout=out)
    key = out.getvalue().split()[-1]
    assert api_with(key).get("/api/v1/lines").status_code == 200
    token = AuthToken.objects.get(user=line_engineer)
    assert key.startswith(token.token_key) and key != token.digest
    assert Event.objects.filter(verb="personal_token_issued", actor="manage.py drf_create_token")


def test_drf_create_token_refuses_an_unknown_user(db):
    with pytest.raises(CommandError, match="No user nobody"):
        call_command("drf_create_token", "nobody", stdout=io.StringIO())
    assert not AuthToken.objects.exists()


def test_the_plain_text_token_table_is_gone(db):
    assert "authtoken_token" not in connection.introspection.table_names()
