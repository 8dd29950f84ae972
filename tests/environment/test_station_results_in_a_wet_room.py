"""Station results applied by the worker's service, in chunks, meet the dry room's excursions:
through the station API and the inbox, as equipment sends them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.urls import reverse

from batches.models import Hold
from environment.intake import accept_readings

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


def dew(seconds: int, value: float) -> dict:
    at = (T0 + timedelta(seconds=seconds)).isoformat()
    return {"sensor": "DP-1", "at": at, "dew_point_c": value}


def test_results_applied_in_one_chunk_join_the_excursion_they_stepped_in(
    proto_batch, station_client, result_for, process_pending, signed_in, quality_engineer
):
    readings = [dew(s, -55.0) for s in range(0, 200, 10)]
    readings += [dew(s, -33.0) for s in range(200, 400, 10)]  # still beyond at the last
    accept_readings("proto-dry-room", {"readings": readings})
    stacker, press = station_client("PR-STK-1"), station_client("PR-PRS-1")
    cells = list(proto_batch.cells.order_by("position")[:4])
    at = [T0 + timedelta(seconds=s) for s in (150, 250, 390, 395)]
    stacker.post_results(
        *[
            result_for(cell, "stacking", occurred_at=when)
            for cell, when in zip(cells, at, strict=True)
        ]
    )
    # The first cell, stacked before the excursion, is pressed during it: not in the room.
    press.post_results(result_for(cells[0], "pressing", occurred_at=T0 + timedelta(seconds=300)))
    assert process_pending()["applied"] == 5
    hold = Hold.objects.get(scope=Hold.Scope.EXCURSION)
    assert {c.serial for c in hold.cells.all()} == {c.serial for c in cells[1:]}
    # The holds queue names the excursion and links its zone's page.
    queue = signed_in(quality_engineer).get(reverse("holds")).content.decode()
    assert f'href="/zones/proto-dry-room/#excursions" class="mono">{hold.target}</a>' in queue
