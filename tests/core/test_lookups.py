"""The `__any` lookup: `= ANY(array)` with one parameter, answering as `__in` does."""

from __future__ import annotations

from django.db import connection
from django.test.utils import CaptureQueriesContext

from batches.models import Cell


def test_any_selects_what_in_selects_with_one_parameter(proto_batch):
    cells = list(proto_batch.cells.order_by("id"))
    serials = [cells[1].serial, cells[4].serial, "NO-SUCH-CELL"]
    with CaptureQueriesContext(connection) as queries:
        found = list(Cell.objects.filter(serial__any=serials).order_by("id"))
    assert found == list(Cell.objects.filter(serial__in=serials).order_by("id"))
    assert found == [cells[1], cells[4]]
    assert "= ANY(" in queries[0]["sql"] and " IN (" not in queries[0]["sql"]


def test_any_on_keys_and_relations_and_excluded(proto_batch):
    cells = list(proto_batch.cells.order_by("id"))
    ids = [cells[0].pk, cells[2].pk]
    assert set(Cell.objects.filter(id__any=ids)) == {cells[0], cells[2]}
    assert Cell.objects.filter(batch__any=[proto_batch.pk]).count() == len(cells)
    assert set(Cell.objects.exclude(id__any=ids)) == set(cells[1:2] + cells[3:])


def test_any_of_nothing_selects_nothing_and_excludes_nothing(proto_batch):
    assert not Cell.objects.filter(serial__any=[]).exists()
    assert Cell.objects.exclude(id__any=[]).count() == proto_batch.cells.count()
