"""The filters every quality figure accepts select the right results, and refuse unknown codes."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from batches.models import Consumption, MaterialLot
from quality.selection import Selection


def _pressed(proto_batch, stations, record):
    cells = list(proto_batch.cells.order_by("position"))
    start = timezone.now() - timedelta(hours=3)
    for i, cell in enumerate(cells):
        record(cell, stations["PR-STK-1"], occurred_at=start + timedelta(minutes=i))
        record(
            cell,
            stations["PR-PRS-1"],
            equipment_ref="CIP-LOAD-1" if i < 4 else "CIP-LOAD-2",
            occurred_at=start + timedelta(hours=1, minutes=i),
        )
    return cells, start


def test_filters_select_by_step_equipment_and_time(proto_batch, stations, record):
    cells, start = _pressed(proto_batch, stations, record)

    selection, errors = Selection.from_query({"line": "proto", "step": "pressing"})
    assert errors == {}
    assert selection.runs().count() == len(cells)

    selection, _ = Selection.from_query({"equipment": "CIP-LOAD-1"})
    assert sorted(selection.runs().values_list("cell__position", flat=True)) == [1, 2, 3, 4]

    until = (start + timedelta(minutes=3)).isoformat()
    selection, _ = Selection.from_query({"since": start.isoformat(), "until": until})
    assert selection.runs().count() == 3  # stacking of the first three cells only

    selection, _ = Selection.from_query({"step": "stacking", "batch": proto_batch.code})
    names = set(selection.measurements().values_list("name", flat=True))
    assert names and selection.measurements(sorted(names)[0]).count() == len(cells)


def test_a_lot_selects_the_cells_that_consumed_it_or_a_lot_cut_from_it(
    proto_batch, stations, record
):
    sheet = MaterialLot.objects.filter(parent__isnull=False, status="released").first()
    roll = sheet.parent
    cells = list(proto_batch.cells.order_by("position"))
    for cell in cells[:3]:
        record(cell, stations["PR-STK-1"], material_lots={sheet.role: sheet.code})
    for cell in cells[3:]:
        record(cell, stations["PR-STK-1"])

    selection, errors = Selection.from_query({"lot": roll.code, "step": "stacking"})
    assert errors == {}
    assert set(selection.runs().values_list("cell", flat=True)) == {c.pk for c in cells[:3]}
    assert Consumption.objects.filter(lot=roll).count() == 0  # found through the sheet only


def test_unknown_codes_and_backward_windows_are_field_errors(plant):
    now = timezone.now()
    selection, errors = Selection.from_query(
        {
            "line": "nowhere",
            "step": "baking",
            "lot": "NO-SUCH-LOT",
            "since": now.isoformat(),
            "until": (now - timedelta(hours=1)).isoformat(),
        }
    )
    assert selection is None
    assert set(errors) == {"line", "step", "lot", "until"}
    assert not MaterialLot.objects.filter(code="NO-SUCH-LOT").exists()


def test_as_query_round_trips(proto_batch, plant):
    query = {"line": "proto", "step": "formation", "batch": proto_batch.code, "recipe_version": "2"}
    selection, _ = Selection.from_query(query)
    assert selection.as_query() == query
