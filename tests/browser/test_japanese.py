"""A Japanese engineer's browser (it asks for ja) gets Japanese on every main page, and the
switch in the header turns the pages to English and back."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Group, User

from batches.services import create_batch
from core.roles import sync_roles
from lines.models import CellDesign, Line, Route

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

KANA_OR_KANJI = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
# Words of the English pages that a Japanese page must not show in its own text.
ENGLISH = ["Batches", "Holds", "Recipes", "Sign out", "Stations", "Search"]


@pytest.fixture
def admin(plant) -> User:
    sync_roles()
    user = User.objects.create_user(username="ada-browser", password="a-long-test-password")
    user.groups.add(Group.objects.get(name="admin"))
    return user


def test_a_japanese_browser_gets_japanese_pages_and_the_switch_works(
    chromium_browser, live_server, sign_in, admin, parts_loaded
):
    line = Line.objects.get(code="yokohama")
    batch = create_batch(
        line=line,
        design=CellDesign.objects.get(code="SSB-20AH-Y1"),
        route=Route.objects.get(line=line, code="pilot"),
        quantity=3,
        by=admin,
    )
    context = chromium_browser.new_context(locale="ja-JP", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        sign_in(page, admin)
        for path in [
            "/",
            "/lines/yokohama/",
            f"/batches/{batch.code}/",
            f"/cells/{batch.code}-0001/",
            "/batches/new/",
            "/holds/",
            "/lots/",
            "/recipes/",
            "/equipment/",
            "/ncrs/",
            "/quality/yield/",
            "/lines/yokohama/oee/",
        ]:
            page.goto(f"{live_server.url}{path}")
            parts_loaded(page)
            assert page.evaluate("document.documentElement.lang") == "ja", path
            nav = page.locator("header nav").inner_text()
            words = page.locator("main").inner_text()
            # Names from the record (a line's, a design's) stay as written; the page's own words
            # are Japanese.
            assert len(KANA_OR_KANJI.findall(words)) >= 20, (path, words[:200])
            assert not [w for w in ENGLISH if re.search(rf"\b{w}\b", nav)], (path, nav)

        page.goto(f"{live_server.url}/holds/")
        page.click("header form.lang button[value=en]")
        page.wait_for_function("document.documentElement.lang === 'en'")
        assert "Holds" in page.locator("main h1").first.inner_text()
        page.goto(f"{live_server.url}/")  # the choice is kept
        assert page.evaluate("document.documentElement.lang") == "en"
        page.click("header form.lang button[value=ja]")
        page.wait_for_function("document.documentElement.lang === 'ja'")
    finally:
        context.close()
