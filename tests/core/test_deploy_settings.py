"""Production settings from the environment pass `manage.py check --deploy` with no warning; the
health check stays reachable over plain HTTP; every page carries the Content-Security-Policy and
needs nothing it refuses; signed-in pages are not cached; the API's docs load only our files."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from django.test import Client

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.usefixtures("own_cache")


def test_check_deploy_passes_with_production_settings_from_the_environment():
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "mes.settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "mes.plant.example",
        "DJANGO_CSRF_TRUSTED_ORIGINS": "https://mes.plant.example",
        "DJANGO_SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https",
    }
    for name in ("DJANGO_HTTPS", "DJANGO_SECURE_HSTS_SECONDS"):
        env.pop(name, None)  # the defaults a deployment gets
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # set by the browser tests for their own thread
    checked = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "System check identified no issues" in checked.stdout


def test_behind_https_only_the_health_check_answers_over_plain_http(db, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    plain = Client()
    assert plain.get("/api/v1/health").status_code == 200
    assert plain.get("/api/v1/health/ingestion").status_code in (200, 503)
    redirected = plain.get("/api/v1/lines")
    assert redirected.status_code == 301
    assert redirected["Location"] == "https://testserver/api/v1/lines"
    assert plain.get("/accounts/login/")["Location"].startswith("https://")
    # Through the proxy, which says the request came over HTTPS: served.
    assert Client(HTTP_X_FORWARDED_PROTO="https").get("/accounts/login/").status_code == 200


# ---------------------------------------------------------------- Content-Security-Policy


def policy_of(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    directives = (part.strip().split() for part in header.split(";") if part.strip())
    return {name: values for name, *values in directives}


def sha256_source(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


@pytest.fixture
def pages(worked_batch, quality_engineer, signed_in) -> tuple[Client, list[str]]:
    """Every kind of page, as a quality engineer sees them (actions included)."""
    batch = worked_batch(10)
    cell = batch.cells.order_by("position")[2]  # stacked and pressed: it has a pressure curve
    lot = "CAT-2611-A-01"
    urls = [
        "/",
        "/lines/proto/",
        "/lines/proto/live/stations",
        "/recipes/",
        "/batches/",
        f"/batches/{batch.code}/",
        f"/batches/{batch.code}/labels/",
        f"/cells/{cell.serial}/",
        "/lots/",
        f"/lots/{lot}/",
        "/holds/",
        "/holds/rules/",
        "/station-results/",
        "/search/?q=PROTO",
        "/accounts/tokens/",
    ]
    return signed_in(quality_engineer), urls


def test_every_page_is_served_under_a_policy_of_our_own_files_only(pages):
    browser, urls = pages
    for url in urls:
        response = browser.get(url)
        assert response.status_code == 200, url
        policy = policy_of(response)
        assert policy["default-src"] == ["'self'"], url
        assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]
        assert policy["style-src"] == ["'self'"], url
        assert "'unsafe-inline'" not in policy["script-src"], url
        assert not any("unsafe-eval" in value for values in policy.values() for value in values)


def test_nothing_on_the_pages_needs_what_the_policy_refuses(pages):
    """No inline script (JSON data blocks aside), every script and stylesheet ours, and every inline
    event handler one of those the policy admits by its hash."""
    browser, urls = pages
    for url in urls:
        response = browser.get(url)
        html = response.content.decode()
        allowed = set(policy_of(response)["script-src"])
        for tag in re.findall(r"<script\b[^>]*>", html):
            if 'type="application/json"' in tag:
                continue
            assert re.search(r'\bsrc="/static/', tag), f"{url}: inline or foreign script {tag}"
        for tag in re.findall(r"<link\b[^>]*>", html):
            assert re.search(r'href="/static/', tag), f"{url}: foreign stylesheet {tag}"
        for handler in re.findall(r'\son[a-z]+="([^"]*)"', html):
            assert sha256_source(handler) in allowed, f"{url}: inline handler {handler!r}"
        for script_url in re.findall(r'href="(javascript:[^"]*)"', html):
            assert sha256_source(script_url) in allowed, f"{url}: {script_url!r}"
        assert "<style" not in html, url


def test_the_error_pages_are_served_under_the_policy_too(db, signed_in, outsider):
    assert policy_of(Client().get("/no-such-page/"))["default-src"] == ["'self'"]
    refused = signed_in(outsider).get("/holds/rules/")
    assert refused.status_code == 403
    back = re.search(r'href="(javascript:[^"]*)"', refused.content.decode())
    assert back and sha256_source(back.group(1)) in policy_of(refused)["script-src"]


# ---------------------------------------------------------------- caching


def test_signed_in_pages_are_not_stored_by_any_cache(pages):
    browser, urls = pages
    for url in urls:
        cache_control = browser.get(url)["Cache-Control"]
        assert "no-store" in cache_control and "private" in cache_control, url


def test_an_anonymous_answer_is_not_marked_no_store(db):
    assert "no-store" not in Client().get("/api/v1/health").get("Cache-Control", "")


# ---------------------------------------------------------------- the API's docs


def local_references(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', html)


@pytest.mark.parametrize("url", ["/api/docs/", "/api/redoc/"])
def test_the_api_docs_load_only_our_own_files(db, url):
    response = Client().get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert "http://" not in html and "https://" not in html  # no CDN, no web fonts
    references = local_references(html)
    assert any(ref.endswith(".js") for ref in references)
    for ref in references:
        assert ref.startswith("/"), ref
        if ref.startswith(
            settings.STATIC_URL if settings.STATIC_URL.startswith("/") else "/static/"
        ):
            path = ref.split("?")[0].removeprefix("/static/")
            assert finders.find(path), f"{ref} is not among the static files"


def test_swagger_ui_starts_from_a_script_of_ours_not_an_inline_one(db):
    page = Client().get("/api/docs/").content.decode()
    assert not re.search(r"<script>\s*\S", page)  # every <script> has a src
    script = Client().get("/api/docs/?script=")
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle" in script.content.decode()
    assert "https://" not in script.content.decode()
