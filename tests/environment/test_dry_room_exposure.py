"""A lot open in the dry room longer than its material may be is held."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from batches.models import Hold
from batches.services import create_batch
from lines.models import CellDesign, Line, Route, Zone

LOTS = {"cathode": "CAT-2611-A-01", "electrolyte": "SE-2611-01"}
NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(autouse=True)
def exposure_limits(plant):
    """Both dry rooms allow an electrolyte lot 8 h open and a cathode lot 24 h."""
    Zone.objects.update(exposure_limits_h={"electrolyte": 8, "cathode": 24})


def test_a_lot_open_past_its_limit_holds_the_cells_that_consumed_it_afterwards(
    proto_batch, stations, record
):
    first, in_time, late, later, *_ = proto_batch.cells.order_by("position")
    stacker = stations["PR-STK-1"]
    record(first, stacker, occurred_at=NOW - timedelta(hours=10), material_lots=LOTS)
    record(in_time, stacker, occurred_at=NOW - timedelta(hours=2, minutes=5), material_lots=LOTS)
    assert not Hold.objects.exists()  # 7 h 55 min after it was first used there
    record(late, stacker, occurred_at=NOW - timedelta(hours=1), material_lots=LOTS)
    hold = Hold.objects.get()
    assert (hold.scope, hold.target, hold.rule.code) == ("lot", "SE-2611-01", "dry_room_exposure")
    assert [c.serial for c in hold.cells.all()] == [late.serial]
    # A later consumer joins the lot's hold; the cathode lot (24 h) is not held.
    record(later, stacker, occurred_at=NOW - timedelta(minutes=30), material_lots=LOTS)
    assert {c.serial for c in hold.cells.all()} == {late.serial, later.serial}
    assert Hold.objects.count() == 1


def test_a_lot_consumed_outside_the_dry_room_has_no_open_time_there(
    plant, line_engineer, stations, record
):
    line = Line.objects.get(code="yokohama")
    batch = create_batch(
        line=line,
        design=CellDesign.objects.get(code="SSB-20AH-Y1"),
        route=Route.objects.get(line=line, code="pilot"),
        quantity=2,
        by=line_engineer,
    )
    first = batch.cells.order_by("position").first()
    # Opened in the Yokohama dry room, then 9 h later first used in the prototype line's: each
    # room counts its own open time.
    record(first, stations["YK-STK-1"], occurred_at=NOW - timedelta(hours=10), material_lots=LOTS)
    assert not Hold.objects.exists()
    proto = stations["PR-STK-1"]
    proto_cell = create_batch(
        line=Line.objects.get(code="proto"),
        design=CellDesign.objects.get(code="SSB-5AH-P1"),
        route=Route.objects.get(line__code="proto", code="std"),
        quantity=1,
        by=line_engineer,
    ).cells.get()
    record(proto_cell, proto, occurred_at=NOW - timedelta(hours=1), material_lots=LOTS)
    assert not Hold.objects.exists()
