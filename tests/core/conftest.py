"""Fixtures of the hardening tests: a cache of the test's own, a clock for the throttles' windows,
and a database that cannot be reached."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator

import pytest
from django.db import connection

from core.throttling import FixedWindowRateThrottle


def closed_port() -> int:
    """A local TCP port nothing listens on: connecting to it is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def own_cache(settings) -> str:
    """The configured cache (Redis in CI) under a key prefix of this test's: the throttles' counts
    start at zero and never meet another test's or another run's on the same Redis."""
    prefix = f"test-{uuid.uuid4().hex}"
    settings.CACHES = {"default": {**settings.CACHES["default"], "KEY_PREFIX": prefix}}
    return prefix


class Clock:
    """The throttles' time, moved by hand: a window boundary cannot fall between two requests."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0  # a whole number of hours: every window starts here

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch) -> Clock:
    frozen = Clock()
    monkeypatch.setattr(FixedWindowRateThrottle, "timer", staticmethod(lambda: frozen.now))
    return frozen


class Outage:
    """This process's connection sent to a port where no PostgreSQL listens (connection refused),
    as when the server is down, from `begin()` to `end()`."""

    def __init__(self) -> None:
        self.database = connection.settings_dict
        self.saved = self.database["HOST"], self.database["PORT"]

    def begin(self) -> None:
        connection.close()
        self.database["HOST"], self.database["PORT"] = "127.0.0.1", closed_port()

    def end(self) -> None:
        connection.close()
        self.database["HOST"], self.database["PORT"] = self.saved


@pytest.fixture
def outage(transactional_db) -> Iterator[Outage]:
    """Transactional: inside a test transaction Django would refuse to reconnect (ProgrammingError)
    instead of trying the server. Ended after the test whatever happened."""
    down = Outage()
    yield down
    down.end()
