"""Fixtures of the station API tests: station tokens, a client per station, result bodies."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from batches.models import Cell
from demo.demo_data import READINGS
from lines.models import Station
from stations import worker
from stations.models import InboxEntry
from stations.services import issue_station_token

RESULTS_URL = "/api/v1/station/results"


class StationClient:
    """A station's equipment talking to the API with its own token."""

    def __init__(self, station: Station, token: str) -> None:
        self.station = station
        self.token = token
        self.http = APIClient()
        self.http.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")

    def get(self, path: str, **extra: Any):
        return self.http.get(path, **extra)

    def post_json(self, path: str, body: Any, **extra: Any):
        return self.http.generic(
            "POST", path, json.dumps(body), content_type="application/json", **extra
        )

    def post_results(self, *results: dict, **extra: Any):
        return self.post_json(RESULTS_URL, {"results": list(results)}, **extra)

    def status_of(self, event_id: str):
        return self.get(f"{RESULTS_URL}/{event_id}")


@pytest.fixture
def station_client(stations) -> Callable[[str], StationClient]:
    """`station_client("PR-STK-1")`: a client holding a fresh token of that station."""

    def make(code: str) -> StationClient:
        station = stations[code]
        return StationClient(station, issue_station_token(station, by="test", revoke_others=False))

    return make


def reading(cell: Cell, kind: str, *, upset: str = "") -> dict[str, Any]:
    return READINGS[kind](cell.batch.design, random.Random(cell.serial), upset=upset)


@pytest.fixture
def result_for() -> Callable[..., dict]:
    """A result body for `cell` at a station of `kind`, with plausible in-spec readings."""

    def make(
        cell: Cell | str,
        kind: str,
        *,
        event_id: str | None = None,
        occurred_at: datetime | None = None,
        upset: str = "",
        curves: bool = False,
        **fields: Any,
    ) -> dict:
        serial = cell if isinstance(cell, str) else cell.serial
        data = reading(cell, kind, upset=upset) if isinstance(cell, Cell) else {}
        body = {
            "event_id": event_id or f"{kind}-{serial}",
            "cell": serial,
            "occurred_at": (occurred_at or timezone.now()).isoformat(),
            "measurements": data.get("measurements", {"x": 1.0}),
            "defects": data.get("defects", []),
        }
        if curves and "curves" in data:
            body["curves"] = data["curves"]
        body.update(fields)
        return body

    return make


@pytest.fixture
def process_pending() -> Callable[[], dict[str, int]]:
    """Run the worker's service over every pending row, as a Celery task would."""

    def run() -> dict[str, int]:
        ids = list(
            InboxEntry.objects.filter(status=InboxEntry.Status.PENDING).values_list("id", flat=True)
        )
        return worker.process_entries(ids)

    return run


@pytest.fixture
def later() -> Callable[[int], datetime]:
    base = timezone.now()
    return lambda seconds: base + timedelta(seconds=seconds)


def nothing_written() -> bool:
    return not InboxEntry.objects.exists()
