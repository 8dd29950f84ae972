"""When the workers stop applying station results, every page says so and the monitoring endpoint
answers 503; a result waiting for an earlier step's result does not count."""

from __future__ import annotations

from datetime import timedelta

import msgspec
import pytest
from django.urls import reverse
from django.utils import timezone

from stations import intake
from stations.models import InboxEntry
from stations.schema import StationResultIn

HEALTH = "/api/v1/health/ingestion"


@pytest.fixture
def arrived(proto_batch, stations):
    """`arrived(seconds_ago, reason_code="")`: a stacking result received that long ago and not
    applied yet (no worker runs in these tests)."""

    def make(seconds_ago: float, reason_code: str = "") -> InboxEntry:
        cell = proto_batch.cells.order_by("position").first()
        result = {
            "event_id": f"r-{seconds_ago}-{reason_code}",
            "cell": cell.serial,
            "occurred_at": timezone.now().isoformat(),
            "measurements": {"layer_count": 20.0},
        }
        accepted = intake.accept_results(
            stations["PR-STK-1"], [msgspec.convert(result, StationResultIn)]
        )
        (pk,) = accepted.entry_ids
        InboxEntry.objects.filter(pk=pk).update(
            received_at=timezone.now() - timedelta(seconds=seconds_ago), reason_code=reason_code
        )
        return InboxEntry.objects.get(pk=pk)

    return make


def test_all_applied_is_ok_and_no_page_warns(proto_batch, client, signed_in, operator):
    response = client.get(HEALTH)
    assert response.status_code == 200
    body = response.json()
    body.pop("mqtt_bridge")  # the MQTT bridge's heartbeat: tests/stations/test_mqtt_messages.py
    assert body == {
        "status": "ok",
        "pending": 0,
        "oldest_pending_s": None,
        "behind_after_s": 60,
    }
    assert 'id="ingestion-behind"' not in signed_in(operator).get(reverse("home")).content.decode()


def test_a_result_just_received_is_not_a_warning(arrived, client, signed_in, operator):
    arrived(2)
    body = client.get(HEALTH).json()
    assert body["status"] == "ok" and body["pending"] == 1 and 1 < body["oldest_pending_s"] < 30
    assert 'id="ingestion-behind"' not in signed_in(operator).get(reverse("home")).content.decode()


def test_a_result_left_unapplied_too_long_warns_on_every_page_and_fails_the_check(
    arrived, client, signed_in, operator
):
    arrived(2)
    arrived(150)
    response = client.get(HEALTH)
    assert response.status_code == 503
    body = response.json()
    assert (body["status"], body["pending"]) == ("behind", 2)
    assert 150 <= body["oldest_pending_s"] < 200
    browser = signed_in(operator)
    for url in (reverse("home"), reverse("batches"), reverse("unapplied-results")):
        page = browser.get(url).content.decode()
        banner = page.split('id="ingestion-behind"')[1].split("</div>")[0]
        assert "2 not applied yet" in banner and "received 2 min ago" in banner, url
        assert f'href="{reverse("unapplied-results")}?state=pending"' in banner


def test_a_result_waiting_for_an_earlier_step_may_wait_without_a_warning(
    arrived, client, signed_in, operator
):
    arrived(3 * 3600, reason_code="waiting")
    body = client.get(HEALTH).json()
    assert (body["status"], body["pending"]) == ("ok", 0)
    assert 'id="ingestion-behind"' not in signed_in(operator).get(reverse("home")).content.decode()


def test_the_sign_in_page_does_not_ask(arrived, client, django_assert_num_queries):
    arrived(150)
    with django_assert_num_queries(0):
        assert client.get(reverse("login")).status_code == 200
