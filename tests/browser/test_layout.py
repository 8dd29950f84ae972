"""Every page fits a 1280 px screen and a 10-inch tablet without scrolling sideways, and the whole
navigation stays reachable, whatever the length of the signed-in person's name."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User

from batches.models import Batch
from batches.services import create_batch, hold_batch
from core.roles import sync_roles
from lines.models import CellDesign, Line, Route

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENS = {"1280 px screen": (1280, 800), "10-inch tablet": (800, 1280)}
# What sticks out: the outermost elements reaching past the viewport's right edge.
WIDEST = """(width) => Array.from(document.querySelectorAll("body *"))
  .filter(e => e.getBoundingClientRect().right > width + 1)
  .filter(e => !e.parentElement || e.parentElement.getBoundingClientRect().right <= width + 1)
  .filter(e => !e.closest("nav, .table-wrap, .flow, .panel"))  // those scroll inside themselves
  .slice(0, 3).map(e => e.tagName + "." + e.className + "#" + e.id)"""
NAV = ["Batches", "Lots", "Holds", "NCRs", "Results not applied", "Recipes", "Equipment", "API"]


@pytest.fixture
def long_named_admin(plant) -> User:
    sync_roles()
    user = User.objects.create_user(
        username="quentin-quality-assurance-yokohama",
        first_name="Quentin-Alexandre",
        last_name="Nakamura-Whitfield",
        password="a-long-test-password",
    )
    user.groups.add(Group.objects.get(name="admin"))
    return user


@pytest.fixture
def held_batch(plant, long_named_admin) -> Batch:
    line = Line.objects.get(code="yokohama")
    batch = create_batch(
        line=line,
        design=CellDesign.objects.get(code="SSB-20AH-Y1"),
        route=Route.objects.get(line=line, code="pilot"),
        quantity=12,
        by=long_named_admin,
    )
    hold_batch(
        batch, by=long_named_admin, reason="suspect electrolyte lot from the supplier's recall"
    )
    return batch


def _pages(batch: Batch) -> list[str]:
    cell = batch.cells.order_by("position").first()
    return [
        "/",
        "/lines/proto/",
        "/lines/yokohama/",
        "/lines/yokohama/oee/",
        "/batches/",
        f"/batches/{batch.code}/",
        "/batches/new/",
        f"/cells/{cell.serial}/",
        "/lots/",
        "/holds/",
        "/recipes/",
        "/equipment/",
        "/ncrs/",
        "/quality/yield/",
        "/quality/spc/capability/yokohama/",
        "/zones/yokohama-dry-room/",
        "/station-results/",
    ]


@pytest.mark.parametrize("screen", SCREENS)
def test_no_page_scrolls_sideways_and_the_navigation_is_reachable(
    chromium_browser, live_server, sign_in, long_named_admin, held_batch, screen, parts_loaded
):
    width, height = SCREENS[screen]
    context = chromium_browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        sign_in(page, long_named_admin)
        overflowing = {}
        for path in _pages(held_batch):
            response = page.goto(f"{live_server.url}{path}")
            assert response.status == 200, path
            parts_loaded(page)
            scroll_width = page.evaluate("document.documentElement.scrollWidth")
            if scroll_width > width:
                overflowing[path] = (scroll_width, page.evaluate(WIDEST, width))
        assert overflowing == {}, f"pages wider than {width} px: {overflowing}"

        page.goto(f"{live_server.url}/")
        toggle = page.locator("header .menu-toggle")
        if toggle.is_visible():  # a narrow screen folds the navigation behind a button
            toggle.click()
        for label in NAV:
            link = page.locator("header nav a", has_text=label).first
            box = link.bounding_box()
            assert link.is_visible() and box is not None, label
            assert 0 <= box["x"] and box["x"] + box["width"] <= width, (label, box)
    finally:
        context.close()
