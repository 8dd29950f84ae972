"""Throttling: each station's requests (burst and sustained rates, its code the key), failed
authentication per client address (bad station or personal tokens: 429 `throttled` within 100
failures a minute, counted in the shared cache across processes), and the sign-in lockout on the
sign-in page and the admin (django-axes: refused within 10 failures, the right password too)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.test import Client
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from lines.models import StationStateChange
from stations.models import InboxEntry
from stations.services import issue_station_token

pytestmark = pytest.mark.usefixtures("own_cache")

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "a-long-test-password"  # the personas' (tests/conftest.py)


def rate(scope: str) -> tuple[int, int]:
    """The configured rate of a throttle scope: (requests, seconds)."""
    configured = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"][scope]
    return SimpleRateThrottle.parse_rate(None, configured)  # it reads nothing of its instance


def set_rates(settings, **rates: str) -> None:
    configured = settings.REST_FRAMEWORK
    merged = {**configured["DEFAULT_THROTTLE_RATES"], **rates}
    settings.REST_FRAMEWORK = {**configured, "DEFAULT_THROTTLE_RATES": merged}


def assert_throttled(response) -> None:
    assert response.status_code == 429, response.content
    assert response.json()["code"] == "throttled"
    assert int(response["Retry-After"]) >= 1


def equipment(code: str, address: str = "10.0.0.1") -> APIClient:
    from lines.models import Station

    client = APIClient(REMOTE_ADDR=address)
    token = issue_station_token(Station.objects.get(code=code), by="test", revoke_others=False)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


# ---------------------------------------------------------------- per station


def test_a_station_past_its_burst_rate_is_throttled_and_the_others_are_not(plant, clock):
    burst, seconds = rate("station_burst")
    assert (burst, seconds) == (50, 1)  # settings.STATION_API_BURST_RATE, as README says
    stacker, presser = equipment("PR-STK-1"), equipment("PR-PRS-1")
    for _ in range(burst):
        assert stacker.get("/api/v1/station").status_code == 200
    response = stacker.get("/api/v1/station")
    assert_throttled(response)
    assert response["Retry-After"] == "1"
    # The same address, another station: its own count.
    assert presser.get("/api/v1/station").status_code == 200
    clock.advance(seconds)
    assert stacker.get("/api/v1/station").status_code == 200


def test_a_station_past_its_sustained_rate_is_throttled(plant, clock, settings):
    set_rates(settings, station_sustained="10/min")
    stacker = equipment("PR-STK-1")
    for _ in range(10):
        assert stacker.get("/api/v1/station").status_code == 200
        clock.advance(1)  # well under the burst rate
    response = stacker.get("/api/v1/station")
    assert_throttled(response)
    assert int(response["Retry-After"]) <= 60
    clock.advance(60)
    assert stacker.get("/api/v1/station").status_code == 200


def test_a_throttled_station_request_writes_nothing(plant, clock, settings, result_for):
    set_rates(settings, station_burst="2/s")
    stacker = equipment("PR-STK-1")
    stacker.get("/api/v1/station")
    stacker.get("/api/v1/station")
    results = stacker.post(
        "/api/v1/station/results", {"results": [result_for("X-1", "stacking")]}, format="json"
    )
    state = stacker.post("/api/v1/station/state", {"state": "down"}, format="json")
    assert_throttled(results)
    assert_throttled(state)
    assert not InboxEntry.objects.exists()
    assert not StationStateChange.objects.exists()


# ---------------------------------------------------------------- failed authentication


def fail_until_refused(attempt, most: int = 200) -> int:
    """Send bad credentials until refused with 429; the number of 401s before it."""
    for failures in range(most):
        response = attempt()
        if response.status_code == 429:
            assert_throttled(response)
            return failures
        assert response.status_code == 401, response.content
        assert response.json()["code"] == "not_authenticated"
    raise AssertionError(f"{most} failed authentications and never a 429")


def bad_bearer(address: str):
    client = APIClient(REMOTE_ADDR=address)
    client.credentials(HTTP_AUTHORIZATION="Bearer not-a-station-token")
    return lambda: client.get("/api/v1/station")


def bad_personal_token(address: str):
    client = APIClient(REMOTE_ADDR=address)
    client.credentials(HTTP_AUTHORIZATION="Token 0123456789abcdef-not-a-token")
    return lambda: client.get("/api/v1/lines")


def test_bad_station_tokens_are_throttled_per_address(plant, clock, result_for):
    limit, seconds = rate("failed_authentication")
    failures = fail_until_refused(bad_bearer("10.1.0.1"))
    assert failures == limit <= 50  # so at most 2 x limit < 100 within any minute (API.md)
    # Refused whatever it sends now, the right token included (and nothing written)...
    stacker = equipment("PR-STK-1", address="10.1.0.1")
    assert_throttled(stacker.get("/api/v1/station"))
    assert_throttled(
        stacker.post(
            "/api/v1/station/results", {"results": [result_for("X-1", "stacking")]}, format="json"
        )
    )
    assert not InboxEntry.objects.exists()
    # ...while another address is not,
    assert equipment("PR-STK-1", address="10.1.0.2").get("/api/v1/station").status_code == 200
    # and for a while only.
    clock.advance(seconds)
    assert stacker.get("/api/v1/station").status_code == 200


def test_bad_personal_tokens_are_throttled_per_address(plant, clock, line_engineer):
    limit, seconds = rate("failed_authentication")
    assert fail_until_refused(bad_personal_token("10.2.0.1")) == limit
    _, key = AuthToken.objects.create(user=line_engineer)
    engineer = APIClient(REMOTE_ADDR="10.2.0.1")
    engineer.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert_throttled(engineer.get("/api/v1/lines"))
    elsewhere = APIClient(REMOTE_ADDR="10.2.0.2")
    elsewhere.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert elsewhere.get("/api/v1/lines").status_code == 200
    clock.advance(seconds)
    assert engineer.get("/api/v1/lines").status_code == 200


def test_station_and_personal_token_failures_count_together(plant, clock):
    limit, _ = rate("failed_authentication")
    station, personal = bad_bearer("10.3.0.1"), bad_personal_token("10.3.0.1")
    for attempt in range(limit):
        assert (station if attempt % 2 else personal)().status_code == 401
    assert_throttled(station())
    assert_throttled(personal())


def test_requests_without_credentials_are_not_failures(plant, clock):
    limit, _ = rate("failed_authentication")
    anonymous = APIClient(REMOTE_ADDR="10.4.0.1")
    for _ in range(limit + 5):
        assert anonymous.get("/api/v1/station").status_code == 401
    assert equipment("PR-STK-1", address="10.4.0.1").get("/api/v1/station").status_code == 200


def test_a_token_that_is_not_text_is_a_401_not_a_500(plant, clock):
    for scheme, url in [("Token", "/api/v1/lines"), ("Bearer", "/api/v1/station")]:
        client = APIClient(REMOTE_ADDR="10.5.0.1")
        client.credentials(HTTP_AUTHORIZATION=f"{scheme} \xff\xfe\xfd")
        response = client.get(url)
        assert response.status_code == 401, response.content
        assert response.json()["code"] == "not_authenticated"


def test_failures_counted_by_another_process_refuse_the_address_here(plant, own_cache):
    """Two gunicorn workers (or replicas) share the count: the failures are recorded by a
    separate Python process, through the configured cache, and this one refuses the address."""
    record_failures = (
        "import django; django.setup()\n"
        "from django.test import RequestFactory\n"
        "from core.throttling import FailedAuthenticationThrottle\n"
        "request = RequestFactory().get('/', REMOTE_ADDR='10.6.0.1')\n"
        "throttle = FailedAuthenticationThrottle()\n"
        "for _ in range(throttle.num_requests):\n"
        "    throttle.record_failure(request)\n"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "mes.settings",
        "CACHE_KEY_PREFIX": own_cache,
        # An hour's window, so the few failures cannot straddle two windows.
        "FAILED_AUTHENTICATION_RATE": "5/hour",
    }
    subprocess.run(
        [sys.executable, "-c", record_failures], cwd=ROOT, env=env, check=True, timeout=120
    )
    assert_throttled(equipment("PR-STK-1", address="10.6.0.1").get("/api/v1/station"))
    assert equipment("PR-STK-1", address="10.6.0.2").get("/api/v1/station").status_code == 200


def test_the_throttles_count_in_a_cache_every_process_shares():
    backend = settings.CACHES["default"]["BACKEND"]
    if settings.CELERY_BROKER_URL.startswith("redis://"):
        assert backend == "django.core.cache.backends.redis.RedisCache"
    else:
        assert backend == "django.core.cache.backends.filebased.FileBasedCache"


# ---------------------------------------------------------------- sign-in lockout


def signed_in_user_id(client: Client) -> str | None:
    return client.session.get("_auth_user_id")


@pytest.mark.parametrize("sign_in_url", ["/accounts/login/", "/admin/login/"])
def test_sign_in_is_refused_after_repeated_failures_even_with_the_right_password(
    roles, admin_persona, sign_in_url
):
    admin_persona.is_staff = True
    admin_persona.save()
    browser = Client(REMOTE_ADDR="10.7.0.1")
    wrong = {"username": admin_persona.username, "password": "not-the-password"}
    statuses = [browser.post(sign_in_url, wrong).status_code for _ in range(10)]
    assert 429 in statuses  # API.md: refused within 10 failures
    assert statuses.index(429) == settings.SIGN_IN_FAILURE_LIMIT - 1
    assert set(statuses[: statuses.index(429)]) == {200}  # the form again, with its error

    right = {"username": admin_persona.username, "password": PASSWORD}
    response = browser.post(sign_in_url, right)
    assert response.status_code == 429
    assert b"Sign-in refused for now" in response.content
    assert signed_in_user_id(browser) is None

    # Another address is not locked out.
    elsewhere = Client(REMOTE_ADDR="10.7.0.2")
    assert elsewhere.post(sign_in_url, right).status_code == 302
    assert signed_in_user_id(elsewhere) == str(admin_persona.pk)


def test_sign_in_works_again_after_the_lockout(roles, admin_persona):
    browser = Client(REMOTE_ADDR="10.8.0.1")
    wrong = {"username": admin_persona.username, "password": "not-the-password"}
    for _ in range(settings.SIGN_IN_FAILURE_LIMIT):
        browser.post("/accounts/login/", wrong)
    right = {"username": admin_persona.username, "password": PASSWORD}
    assert browser.post("/accounts/login/", right).status_code == 429
    # The lockout's time passes.
    AccessAttempt.objects.update(
        attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(minutes=1)
    )
    assert browser.post("/accounts/login/", right).status_code == 302
    assert signed_in_user_id(browser) == str(admin_persona.pk)
