"""The batches each hold's cells belong to (batches.HoldBatch): written by the database in the
transaction of every statement that adds cells to holds, always what the holds' cells say, and
how a batch finds the holds of its cells."""

from __future__ import annotations

import pytest

from batches.models import Batch, Cell, Hold, HoldBatch, MaterialLot
from batches.selectors import holds_of_batch, open_holds_of_batch
from batches.services import create_batch, hold_batch, hold_lot

pytestmark = pytest.mark.django_db


def _noted() -> set[tuple[int, int]]:
    return set(HoldBatch.objects.values_list("hold_id", "batch_id"))


def _from_holds_cells() -> set[tuple[int, int]]:
    return set(
        Cell.objects.filter(holds__isnull=False).values_list("holds__id", "batch_id").distinct()
    )


@pytest.fixture
def second_batch(proto_batch, line_engineer) -> Batch:
    return create_batch(
        line=proto_batch.line,
        design=proto_batch.design,
        route=proto_batch.route,
        quantity=5,
        by=line_engineer,
        material_lots={"cathode": "CAT-2611-A-01", "electrolyte": "SE-2611-01"},
    )


def test_a_lot_hold_reaches_every_batch_its_cells_belong_to(
    proto_batch, second_batch, stations, record, line_engineer
):
    lots = {"electrolyte": "SE-2611-02"}
    first = proto_batch.cells.get(position=1)
    record(first, stations["PR-STK-1"], material_lots=lots)
    hold = hold_lot(MaterialLot.objects.get(code="SE-2611-02"), by=line_engineer, reason="ICP")
    assert _noted() == {(hold.pk, proto_batch.pk)}
    assert [h.pk for h in holds_of_batch(second_batch)] == []
    # A later consumer in the other batch joins the lot's open hold, and so does its batch.
    later = second_batch.cells.get(position=1)
    record(later, stations["PR-STK-1"], material_lots=lots)
    assert set(hold.cells.all()) == {first, later}
    assert _noted() == {(hold.pk, proto_batch.pk), (hold.pk, second_batch.pk)}
    assert [h.pk for h in open_holds_of_batch(second_batch)] == [hold.pk]
    assert [h.pk for h in holds_of_batch(proto_batch)] == [hold.pk]
    assert _noted() == _from_holds_cells()


def test_cell_and_batch_holds_are_noted_once_per_batch(
    proto_batch, stations, record, line_engineer
):
    record(proto_batch.cells.get(position=1), stations["PR-STK-1"], upset="misalignment")
    record(proto_batch.cells.get(position=2), stations["PR-STK-1"], upset="insulation")
    held = hold_batch(proto_batch, by=line_engineer, reason="audit")
    assert _noted() == _from_holds_cells()
    assert {hold_id for hold_id, _ in _noted()} == set(
        Hold.objects.exclude(cells=None).values_list("pk", flat=True)
    )
    assert held.pk in {h.pk for h in holds_of_batch(proto_batch)}
    assert HoldBatch.objects.filter(batch=proto_batch).count() == len(_noted())
