"""Shared fixtures: the seeded master data of both lines, and the people who use the system."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User

from batches.management.commands.seed_demo import Command as SeedDemo
from batches.models import Batch, CellDesign
from batches.services import create_batch
from lines.models import Line, Route, Station


@pytest.fixture
def plant(db):
    """Both lines with stations, routes, released recipes, designs, lots and hold rules (no batches)."""
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
