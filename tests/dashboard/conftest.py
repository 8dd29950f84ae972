"""Fixtures of the dashboard and engineers' API tests: roles in place, signed-in clients, and a
line with a batch of a chosen size worked through its first steps."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from django.test import Client
from rest_framework.test import APIClient

from batches.models import Batch, CellDesign
from batches.services import create_batch, hold_batch
from core.roles import sync_roles
from lines.models import Line, Route


@pytest.fixture(autouse=True)
def roles(db) -> None:
    # post_migrate runs it too; here it also covers a database that a transactional test flushed.
    sync_roles()


@pytest.fixture
def admin_persona(db) -> User:
    from django.contrib.auth.models import Group

    user = User.objects.create_user(username="ada-admin", password="a-long-test-password")
    user.groups.add(Group.objects.get(name="admin"))
    return user


@pytest.fixture
def signed_in() -> Callable[[User | None], Client]:
    """`signed_in(user)`: a browser session of that user (None: anonymous)."""

    def make(user: User | None) -> Client:
        client = Client()
        if user is not None:
            client.force_login(user)
        return client

    return make


@pytest.fixture
def api_as() -> Callable[[User | None], APIClient]:
    """`api_as(user)`: an API client with the user's personal token (None: no credentials)."""
    from rest_framework.authtoken.models import Token

    def make(user: User | None) -> APIClient:
        client = APIClient()
        if user is not None:
            token, _ = Token.objects.get_or_create(user=user)
            client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return client

    return make


@pytest.fixture
def worked_batch(plant, stations, record, line_engineer) -> Callable[[int], Batch]:
    """`worked_batch(n)`: a proto batch of n cells, all stacked, half of them pressed (with
    curves), one stacked cell out of spec (held by the out-of-spec rule) and the batch held."""

    def make(quantity: int) -> Batch:
        line = Line.objects.get(code="proto")
        batch = create_batch(
            line=line,
            design=CellDesign.objects.get(code="SSB-5AH-P1"),
            route=Route.objects.get(line=line, code="std"),
            quantity=quantity,
            by=line_engineer,
            code=f"PROTO-T{quantity}",
        )
        lots = {"cathode": "CAT-2611-A-01", "electrolyte": "SE-2611-01"}
        cells = list(batch.cells.order_by("position"))
        for index, cell in enumerate(cells):
            upset = "misalignment" if index == 1 else ""
            record(cell, stations["PR-STK-1"], upset=upset, material_lots=lots)
        for cell in cells[2 : 2 + quantity // 2]:
            record(cell, stations["PR-PRS-1"], curves=_pressing_curve())
        hold_batch(batch, by=line_engineer, reason="dew point excursion in dry room 2")
        return batch

    return make


def _pressing_curve() -> dict:
    t = [i / 10 for i in range(50)]
    return {"pressure": {"t_s": t, "values": [min(500.0, 25 * x) for x in t], "unit": "MPa"}}
