from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, transaction

from audit.models import Event
from batches import services
from batches.models import Batch, BatchMaterial, Cell
from batches.services import create_batch
from core.errors import DomainError
from lines.models import CellDesign, Line, Route


def test_creating_a_batch_generates_its_cells_at_the_first_step(proto_batch):
    cells = list(proto_batch.cells.order_by("position"))
    assert [c.serial for c in cells[:2]] == [f"{proto_batch.code}-0001", f"{proto_batch.code}-0002"]
    assert len(cells) == proto_batch.planned_quantity == 10
    assert {c.status for c in cells} == {Cell.Status.PLANNED}
    assert {c.next_step.station_kind for c in cells} == {"stacking"}
    assert proto_batch.status == Batch.Status.PLANNED
    assert set(BatchMaterial.objects.filter(batch=proto_batch).values_list("role", flat=True)) == {
        "cathode",
        "electrolyte",
    }
    event = Event.objects.get(subject_type="batch", subject=proto_batch.code)
    assert event.verb == "batch_created"
    assert event.actor == "lena-line-engineer"


def test_batch_codes_count_up_per_line_and_day(proto_batch, line_engineer):
    second = create_batch(
        line=proto_batch.line,
        design=proto_batch.design,
        route=proto_batch.route,
        quantity=1,
        by=line_engineer,
    )
    assert proto_batch.code.endswith("-01")
    assert second.code == proto_batch.code[:-2] + "02"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"route": ("yokohama", "pilot")}, "invalid"),
        ({"quantity": 0}, "invalid"),
        ({"quantity": 10001}, "invalid"),
        ({"material_lots": {"cathode": "NO-SUCH-LOT"}}, "unknown_lot"),
        ({"material_lots": {"anode": "SE-2611-01"}}, "wrong_lot_role"),
    ],
)
def test_bad_batch_orders_are_refused_and_write_nothing(plant, line_engineer, change, code):
    line = Line.objects.get(code="proto")
    route_line, route_code = change.pop("route", ("proto", "std"))
    order = {
        "line": line,
        "design": CellDesign.objects.get(code="SSB-5AH-P1"),
        "route": Route.objects.get(line__code=route_line, code=route_code),
        "quantity": 5,
        "by": line_engineer,
        **change,
    }
    with pytest.raises(DomainError) as refused:
        create_batch(**order)
    assert refused.value.code == code
    assert not Batch.objects.exists()
    assert not Cell.objects.exists()
    assert not Event.objects.filter(verb="batch_created").exists()


def _order(line_engineer, **fields) -> dict:
    line = Line.objects.get(code="proto")
    return {
        "line": line,
        "design": CellDesign.objects.get(code="SSB-5AH-P1"),
        "route": Route.objects.get(line=line, code="std"),
        "quantity": 2,
        "by": line_engineer,
        **fields,
    }


def test_the_next_code_follows_the_highest_taken_not_the_count(proto_batch, line_engineer):
    prefix = proto_batch.code[:-2]
    create_batch(**_order(line_engineer, code=f"{prefix}07"))  # a gap: 02-06 unused
    assert create_batch(**_order(line_engineer)).code == f"{prefix}08"


def test_a_code_asked_for_twice_is_refused_and_writes_nothing(proto_batch, line_engineer):
    cells, events = Cell.objects.count(), Event.objects.count()
    with pytest.raises(DomainError) as refused:
        create_batch(**_order(line_engineer, code=proto_batch.code))
    assert refused.value.code == "duplicate"
    assert (Cell.objects.count(), Event.objects.count()) == (cells, events)


@pytest.mark.django_db(transaction=True)
def test_two_planners_at_once_get_two_codes(plant, line_engineer, monkeypatch):
    # The first planner's batch is written but not committed when the second counts the codes:
    # both take -01; PostgreSQL holds the second insert until the first commits, then refuses it,
    # and the second planner counts again and takes -02.
    first_written, second_counted = threading.Event(), threading.Event()
    codes: dict[str, str] = {}
    counted_by_second: list[str] = []
    count = services._next_batch_code

    def counted(line):
        code = count(line)
        if threading.current_thread().name == "second":
            counted_by_second.append(code)
            second_counted.set()
        return code

    monkeypatch.setattr(services, "_next_batch_code", counted)

    def plan(name: str) -> None:
        try:
            if name == "first":
                with transaction.atomic():
                    codes[name] = create_batch(**_order(line_engineer)).code
                    first_written.set()
                    second_counted.wait(10)
                    time.sleep(0.3)  # the second's insert now waits for this transaction
            else:
                first_written.wait(10)
                codes[name] = create_batch(**_order(line_engineer)).code
        finally:
            connection.close()

    threads = [threading.Thread(target=plan, args=(n,), name=n) for n in ("first", "second")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert codes["first"].endswith("-01") and codes["second"].endswith("-02"), codes
    # The second counted -01 (the first's batch not yet committed), was refused, counted again.
    assert [code[-3:] for code in counted_by_second] == ["-01", "-02"]
    assert Batch.objects.count() == 2 and Cell.objects.count() == 4
