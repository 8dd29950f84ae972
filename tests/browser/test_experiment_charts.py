"""An experiment's page in a real browser: the box plots and the main-effect chart are drawn
(Chart.js from the page's JSON, under the Content-Security-Policy) without a script error."""

from __future__ import annotations

import pytest

from core.roles import sync_roles
from tests.quality.test_experiment_pages import FEATURE, running  # noqa: F401
from tests.quality.test_experiments import batch40, stacked40  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def drawn(running):  # noqa: F811
    sync_roles()
    return running


def test_the_arms_box_plots_and_main_effects_are_drawn(page, live_server, sign_in, drawn, operator):
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    sign_in(page, operator)
    page.goto(f"{live_server.url}/quality/experiments/EXP-PRESS-1/?feature={FEATURE}")
    page.wait_for_function("typeof Chart !== 'undefined'")
    page.wait_for_function("Chart.getChart(document.getElementById('arm-boxes')) !== undefined")
    boxes = page.evaluate(
        "Chart.getChart(document.getElementById('arm-boxes')).data.datasets[0].data"
    )
    assert len(boxes) == 2 and all(q1 <= q3 for q1, q3 in boxes)
    assert page.evaluate("Chart.getChart(document.getElementById('main-effects')) !== undefined")
    assert errors == []
