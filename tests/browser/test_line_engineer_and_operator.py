"""End to end in a real browser: a station's result appears on the line view without a reload;
a batch held from its page is refused at the next track-in; an operator cannot hold."""

from __future__ import annotations

import json
import random
import urllib.error
import urllib.request

import pytest
from django.utils import timezone

from batches.models import Batch, Hold
from batches.services import create_batch
from core.roles import sync_roles
from demo.demo_data import READINGS
from lines.models import CellDesign, Line, Route, Station
from stations.services import issue_station_token

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def batch(plant, line_engineer) -> Batch:
    sync_roles()  # a flush between transactional tests empties the groups' permissions
    line = Line.objects.get(code="proto")
    return create_batch(
        line=line,
        design=CellDesign.objects.get(code="SSB-5AH-P1"),
        route=Route.objects.get(line=line, code="std"),
        quantity=5,
        by=line_engineer,
        code="PROTO-BROWSER-01",
    )


def station_post(base: str, token: str, path: str, body: dict) -> tuple[int, dict]:
    """What station equipment does: JSON over HTTP with its bearer token."""
    request = urllib.request.Request(
        f"{base}/api/v1/station/{path}",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_a_line_engineer_sees_a_result_live_holds_the_batch_and_track_in_is_refused(
    page, live_server, sign_in, eager_worker, batch, line_engineer
):
    stacker = Station.objects.get(code="PR-STK-1")
    token = issue_station_token(stacker, by="test")
    first, second = batch.cells.order_by("position")[:2]
    sign_in(page, line_engineer)

    page.goto(f"{live_server.url}/lines/proto/")
    station_card = page.locator("#station-PR-STK-1")
    assert first.serial not in station_card.inner_text()
    page.evaluate("window.notReloaded = true")

    readings = READINGS["stacking"](batch.design, random.Random(1))
    status, body = station_post(
        live_server.url,
        token,
        "results",
        {
            "results": [
                {
                    "event_id": "browser-stk-1",
                    "cell": first.serial,
                    "occurred_at": timezone.now().isoformat(),
                    "measurements": readings["measurements"],
                    "material_lots": {"cathode": "CAT-2611-A-01"},
                }
            ]
        },
    )
    assert (status, body) == (202, {"accepted": 1, "duplicates": 0})

    # The stations panel re-fetches itself every few seconds: the result shows up in place.
    page.locator("#station-PR-STK-1 .last-result").get_by_text(first.serial).wait_for()
    assert "1 pass" in station_card.inner_text()
    assert page.evaluate("window.notReloaded") is True

    page.goto(f"{live_server.url}/batches/{batch.code}/")
    page.fill("#hold-batch-form input[name=reason]", "SE lot suspect: dew point excursion")
    page.click("#hold-batch-form button[type=submit]")
    page.locator("#hold-banner").wait_for()
    assert "is on hold" in page.locator(".messages").inner_text()
    hold = Hold.objects.get(scope="batch", target=batch.code)
    assert hold.opened_by == line_engineer and hold.status == "open"

    status, body = station_post(live_server.url, token, "track-in", {"cell": second.serial})
    assert (status, body["code"]) == (409, "on_hold")


def test_an_operator_finds_the_hold_action_refused(page, live_server, sign_in, batch, operator):
    sign_in(page, operator)
    page.goto(f"{live_server.url}/batches/{batch.code}/")
    assert page.locator("#hold-batch-form").count() == 0
    assert "Holding needs the line engineer" in page.locator("#hold-refused").inner_text()

    # Even a hand-made request from the operator's own session is refused.
    status = page.evaluate(
        """async (url) => {
            const token = document.querySelector("[name=csrfmiddlewaretoken]").value;
            const response = await fetch(url, {
                method: "POST",
                headers: {"Content-Type": "application/x-www-form-urlencoded", "X-CSRFToken": token},
                body: "reason=operator+tries",
            });
            return response.status;
        }""",
        f"{live_server.url}/batches/{batch.code}/hold",
    )
    assert status == 403
    assert not Hold.objects.filter(target=batch.code).exists()
