"""Shared fixtures: the seeded master data of both lines, and the people who use the system."""

from __future__ import annotations

import os

import pytest
from django.contrib.auth.models import Group, User

from batches.models import Batch
from batches.services import create_batch
from demo.management.commands.seed_demo import Command as SeedDemo
from lines.models import CellDesign, Line, Route, Station

pytest_plugins = ["tests.fixtures.stations", "tests.fixtures.pages"]

# Under pytest-xdist (`make test`): this worker's name, e.g. "gw0"; unset in a plain run.
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
# The longest single tests, started first so that no worker is left with one of them at the end
# while the other is idle (measured with --durations: minutes each; the rest take seconds).
LONGEST_FIRST = (
    "tests/test_api_fuzzing.py::test_every_operation_answers_as_documented",
    "tests/test_migrating_the_previous_layout.py",
    "tests/demo/test_generate_history.py",
    "tests/demo/test_seed_demo.py",
)


def pytest_configure(config):
    if XDIST_WORKER:
        # pytest-django gives each worker a database of its own (test_<name>_gw0, ...); the
        # shared Redis cache needs a key prefix of its own too, or one worker's throttle counts
        # and MQTT bridge heartbeat would be read by the other's tests.
        from django.conf import settings

        settings.CACHE_KEY_PREFIX = f"{settings.CACHE_KEY_PREFIX}-{XDIST_WORKER}"
        settings.CACHES["default"]["KEY_PREFIX"] = settings.CACHE_KEY_PREFIX


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the xdist_group marks
def pytest_collection_modifyitems(config, items):
    if not XDIST_WORKER:
        return
    for item in items:
        if item.get_closest_marker("processes"):
            # Real gunicorn, Celery, bridge and broker processes: one such test at a time, as
            # in a plain run, so two stacks never compete for the 2 cores and miss their
            # start-up timeouts (--dist loadgroup keeps a group on one worker).
            item.add_marker(pytest.mark.xdist_group("processes"))
    items.sort(key=lambda item: not item.nodeid.startswith(LONGEST_FIRST))


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # The real hasher is slow by design; tests sign in many personas.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """Seed the master data once per run; each test's transaction is rolled back over it."""
    with django_db_blocker.unblock():
        SeedDemo().seed_master_data()


@pytest.fixture
def plant(db):
    """Both lines with stations, routes, released recipes, designs, lots and hold rules (no batches)."""
    if not Line.objects.exists():  # a transactional test before this one flushed the tables
        SeedDemo().seed_master_data()
    return Line.objects.all()


def _persona(username: str, group: str) -> User:
    user = User.objects.create_user(username=username, password="a-long-test-password")
    user.groups.add(Group.objects.get_or_create(name=group)[0])
    return user


@pytest.fixture
def operator(db) -> User:
    return _persona("oscar-operator", "operator")


@pytest.fixture
def line_engineer(db) -> User:
    return _persona("lena-line-engineer", "line_engineer")


@pytest.fixture
def quality_engineer(db) -> User:
    return _persona("quinn-quality", "quality_engineer")


@pytest.fixture
def outsider(db) -> User:
    return User.objects.create_user(username="otto-outsider", password="a-long-test-password")


@pytest.fixture
def proto_batch(plant, line_engineer) -> Batch:
    """A planned batch of 10 cells on the prototype line's stack-press-form route."""
    line = Line.objects.get(code="proto")
    return create_batch(
        line=line,
        design=CellDesign.objects.get(code="SSB-5AH-P1"),
        route=Route.objects.get(line=line, code="std"),
        quantity=10,
        by=line_engineer,
        material_lots={"cathode": "CAT-2611-A-01", "electrolyte": "SE-2611-01"},
    )


@pytest.fixture
def stations(plant) -> dict[str, Station]:
    return {s.code: s for s in Station.objects.all()}


@pytest.fixture
def record():
    """Record one step for a cell at a station with in-spec readings, overridable per test."""
    from django.utils import timezone

    from batches.services import StepResult, record_step
    from tests.fixtures.stations import reading

    def _record(cell, station, *, upset: str = "", measurements=None, defects=None, **fields):
        data = reading(cell, station.kind, upset=upset)
        result = StepResult(
            occurred_at=fields.pop("occurred_at", timezone.now()),
            measurements={**data["measurements"], **(measurements or {})},
            defects=data["defects"] if defects is None else defects,
            curves=fields.pop("curves", {}),
            **fields,
        )
        return record_step(cell, station, result, by=f"station:{station.code}")

    return _record
