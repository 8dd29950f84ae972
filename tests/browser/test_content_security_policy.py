"""Under the Content-Security-Policy, in a real browser: the pages raise no violation and still work
(htmx's live panels, Chart.js's curves, the recipes filter, the print button), and the API's docs
(Swagger UI, ReDoc) render from our own static files."""

from __future__ import annotations

import pytest

from core.roles import sync_roles

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Every violation the page reports, kept on the page for the test to read.
RECORD_VIOLATIONS = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.cspViolations.push(
    `${event.violatedDirective} blocked ${event.blockedURI || "inline"}: ${event.sample}`
  );
});
"""


def violations(page) -> list[str]:
    return page.evaluate("window.cspViolations")


@pytest.fixture
def watched(page):
    page.add_init_script(RECORD_VIOLATIONS)
    return page


@pytest.fixture
def batch(worked_batch):
    sync_roles()  # a flush between transactional tests empties the groups' permissions
    return worked_batch(6)


def test_the_pages_work_under_the_policy(watched, live_server, sign_in, batch, quality_engineer):
    page = watched
    sign_in(page, quality_engineer)
    pressed = batch.cells.order_by("position")[2]  # stacked and pressed: a pressure curve
    for url in [
        "/",
        "/lines/proto/",
        f"/batches/{batch.code}/",
        f"/cells/{pressed.serial}/",
        "/holds/",
        "/lots/",
        "/station-results/",
        "/accounts/tokens/",
    ]:
        page.goto(f"{live_server.url}{url}")
        page.wait_for_load_state("networkidle")
        assert violations(page) == [], url

    # Chart.js drew the curve (no eval needed).
    page.goto(f"{live_server.url}/cells/{pressed.serial}/")
    page.wait_for_function("typeof Chart !== 'undefined'")
    assert page.evaluate("document.querySelectorAll('canvas[data-curve]').length") >= 1
    assert page.evaluate(
        "Array.from(document.querySelectorAll('canvas[data-curve]')).every(c => Chart.getChart(c))"
    )

    # htmx refreshes the line view's panels by itself.
    page.goto(f"{live_server.url}/lines/proto/")
    with page.expect_response(lambda r: "/live/" in r.url, timeout=15_000):
        pass
    assert violations(page) == []

    # The recipes filter submits on change (its inline handler is admitted by its hash).
    page.goto(f"{live_server.url}/recipes/")
    page.select_option("#line", "proto")
    page.wait_for_url("**/recipes/?line=proto")
    assert violations(page) == []

    # The labels' print button (its handler admitted by its hash too).
    page.goto(f"{live_server.url}/batches/{batch.code}/labels/")
    page.evaluate("window.print = () => { window.printed = true; }")
    page.get_by_role("button", name="Print this sheet").click()
    assert page.evaluate("window.printed") is True
    assert violations(page) == []


def test_the_refused_pages_go_back_link_works_under_the_policy(
    watched, live_server, sign_in, plant, outsider
):
    page = watched
    sign_in(page, outsider)
    page.goto(f"{live_server.url}/accounts/tokens/")
    page.goto(f"{live_server.url}/holds/rules/")
    assert page.locator("h1").inner_text() == "Not allowed"
    page.get_by_text("Go back").click()
    page.wait_for_url("**/accounts/tokens/")
    assert violations(page) == []


# ReDoc's side menu credits Redocly with a logo from Redocly's CDN, in any configuration: the
# policy refuses it and ReDoc then leaves the logo out (its onError). Nothing else may be foreign.
REDOCLY_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


@pytest.mark.parametrize(
    ("url", "rendered", "refused"),
    [
        ("/api/docs/", "#swagger-ui .information-container .title", []),
        ("/api/redoc/", ".api-info h1", [f"img-src blocked {REDOCLY_LOGO}: "]),
    ],
)
def test_the_api_docs_render_from_our_own_files(watched, live_server, url, rendered, refused):
    page = watched
    loaded: list[str] = []
    page.on("requestfinished", lambda request: loaded.append(request.url))
    page.goto(f"{live_server.url}{url}")
    page.locator(rendered).first.wait_for()
    page.wait_for_load_state("networkidle")
    assert "Pilot-line MES API" in page.locator(rendered).first.inner_text()
    assert [u for u in loaded if not u.startswith((live_server.url, "data:", "blob:"))] == []
    assert violations(page) == refused
