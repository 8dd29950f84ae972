"""A real headless Chromium (Debian's /usr/bin/chromium) driven by Playwright against
pytest-django's live server. Without the browser these tests skip, except on CI where they fail."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Playwright's sync API runs an event loop in this thread; Django's ORM (used by the fixtures in
# the same thread) would otherwise refuse to run beside it.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="session")
def chromium_browser() -> Iterator:
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: apt-get install -y chromium"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI needs the browser tests: {message}")
        pytest.skip(f"browser tests skipped: {message}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        browser.close()


@pytest.fixture
def page(chromium_browser, live_server) -> Iterator:
    context = chromium_browser.new_context(viewport={"width": 1600, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture
def eager_worker() -> Iterator[None]:
    """Station results are processed by the Celery task in the server's thread, right after the
    request commits: the real task and service, without a separate worker process."""
    from mes.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


@pytest.fixture
def sign_in(live_server):
    def sign_in_as(page, user) -> None:
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("#id_username", user.username)
        page.fill("#id_password", "a-long-test-password")
        page.click("#sign-in button[type=submit]")
        page.wait_for_url(f"{live_server.url}/")

    return sign_in_as


@pytest.fixture
def parts_loaded():
    """Waits until the parts a page fetches as it loads (the line view's live fragments) are in."""

    from playwright.sync_api import expect

    def wait(page) -> None:
        expect(page.locator(".loading")).to_have_count(0)

    return wait
