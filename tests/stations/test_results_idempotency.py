"""event_id is the idempotency key: a repeat is a duplicate, never a second record; a reuse with
other content is refused and nothing from that request is stored."""

from __future__ import annotations

import pytest

from batches.models import ProcessRun
from stations.models import InboxEntry


@pytest.fixture
def stacker(station_client):
    return station_client("PR-STK-1")


@pytest.fixture
def cells(proto_batch):
    return list(proto_batch.cells.all())


def test_results_count_a_repeat_across_requests_as_duplicate(stacker, cells, result_for):
    result = result_for(cells[0], "stacking")
    assert stacker.post_results(result).json() == {"accepted": 1, "duplicates": 0}
    assert stacker.post_results(result).json() == {"accepted": 0, "duplicates": 1}
    assert InboxEntry.objects.count() == 1


def test_results_count_a_repeat_within_one_request_as_duplicate(stacker, cells, result_for):
    result = result_for(cells[0], "stacking")
    other = result_for(cells[1], "stacking")
    response = stacker.post_results(result, other, result)
    assert response.json() == {"accepted": 2, "duplicates": 1}
    assert InboxEntry.objects.count() == 2


def test_results_treat_the_same_content_in_other_spelling_as_duplicate(stacker, cells, result_for):
    result = result_for(cells[0], "stacking")
    stacker.post_results(result)
    respelled = {**result, "measurements": dict(reversed(result["measurements"].items()))}
    respelled["measurements"]["layer_count"] = 20  # 20 and 20.0 are the same number
    assert stacker.post_results(respelled).json() == {"accepted": 0, "duplicates": 1}


def test_results_refuse_an_event_id_reused_with_other_content(stacker, cells, result_for):
    first = result_for(cells[0], "stacking", event_id="E-1")
    stacker.post_results(first)
    changed = result_for(cells[1], "stacking", event_id="E-1")
    fresh = result_for(cells[2], "stacking", event_id="E-2")
    response = stacker.post_results(fresh, changed)
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "event_id_reused"
    assert body["errors"] == {"event_ids": ["E-1"]}
    # Nothing from the refused request: not even the fresh E-2.
    assert list(InboxEntry.objects.values_list("event_id", flat=True)) == ["E-1"]
    assert InboxEntry.objects.get().cell_serial == cells[0].serial


def test_results_refuse_an_event_id_twice_in_one_request_with_other_content(
    stacker, cells, result_for
):
    first = result_for(cells[0], "stacking", event_id="E-1")
    second = result_for(cells[1], "stacking", event_id="E-1")
    response = stacker.post_results(first, second)
    assert response.status_code == 409
    assert response.json()["code"] == "event_id_reused"
    assert response.json()["errors"] == {
        "results": {"1": {"event_id": ["Sent earlier in this request with other content."]}}
    }
    assert not InboxEntry.objects.exists()


def test_results_replayed_20_times_make_one_record(stacker, cells, result_for, process_pending):
    result = result_for(cells[0], "stacking")
    replies = [stacker.post_results(result).json() for _ in range(20)]
    process_pending()
    replies += [stacker.post_results(result).json() for _ in range(5)]
    assert replies[0] == {"accepted": 1, "duplicates": 0}
    assert all(reply == {"accepted": 0, "duplicates": 1} for reply in replies[1:])
    assert InboxEntry.objects.count() == 1
    assert ProcessRun.objects.filter(event_id=result["event_id"]).count() == 1


def test_results_event_ids_are_per_station(station_client, cells, result_for):
    stacker, presser = station_client("PR-STK-1"), station_client("PR-PRS-1")
    stacker.post_results(result_for(cells[0], "stacking", event_id="E-1"))
    response = presser.post_results(result_for(cells[0], "pressing", event_id="E-1"))
    assert response.json() == {"accepted": 1, "duplicates": 0}
    assert InboxEntry.objects.count() == 2
