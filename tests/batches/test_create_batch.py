from __future__ import annotations

import pytest

from audit.models import Event
from batches.models import Batch, BatchMaterial, Cell, CellDesign
from batches.services import create_batch
from lines.models import Line, Route
from mes.errors import DomainError


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
