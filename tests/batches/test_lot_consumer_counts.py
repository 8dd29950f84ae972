"""A lot's consumer counts (batches.LotConsumerCount): changes written by the database in the
transaction of every statement that adds or removes consumptions, moves cells between statuses
or moves a lot to another roll, and folded by beat's compaction, always sum to what counting the
record gives; the lots list, the lot page and the API read them."""

from __future__ import annotations

import importlib

import psycopg
import pytest
from django.db import connection
from django.db.models import Sum
from django.db.models.functions import Coalesce
from django.urls import reverse

from batches.models import Cell, Consumption, LotConsumerCount, MaterialLot
from batches.selectors import lot_and_descendant_ids
from batches.services import compact_lot_consumer_counts, scrap_cell
from batches.tasks import compact_lot_consumer_counts as compact_task
from tests import processes
from tests.factories import MaterialLotFactory

pytestmark = pytest.mark.django_db

COUNTS = ("consumptions", "cells", "in_process", "completed", "scrapped")
ROLL, SHEET, OTHER_SHEET = "CAT-ROLL-2611-A", "CAT-2611-A-01", "CAT-2611-A-02"
LOTS = {"cathode": SHEET, "electrolyte": "SE-2611-01"}


def _counted(lot: MaterialLot) -> dict[str, int]:
    """The lot's counts from the record: its own consumptions, and the cells that consumed it or
    a lot cut from it, each once, by status."""
    below = Cell.objects.filter(
        consumptions__lot_id__in=lot_and_descendant_ids([lot.pk])
    ).distinct()
    return {
        "consumptions": Consumption.objects.filter(lot=lot).count(),
        "cells": below.count(),
        **{status: below.filter(status=status).count() for status in COUNTS[2:]},
    }


def _summed(lot: MaterialLot) -> dict[str, int]:
    rows = LotConsumerCount.objects.filter(lot=lot)
    return rows.aggregate(**{name: Coalesce(Sum(name), 0) for name in COUNTS})


def assert_every_lot_summed_as_counted() -> None:
    lots = list(MaterialLot.objects.all())
    assert {lot.code: _summed(lot) for lot in lots} == {lot.code: _counted(lot) for lot in lots}


def _lot(code: str) -> MaterialLot:
    return MaterialLot.objects.get(code=code)


def _consume(cell: Cell, code: str) -> Consumption:
    lot = _lot(code)
    return Consumption.objects.create(cell=cell, lot=lot, role=lot.role)


@pytest.fixture
def stacked(proto_batch, stations, record) -> list[Cell]:
    """Four cells of the prototype batch stacked with a sheet of the cathode roll."""
    cells = list(proto_batch.cells.order_by("position")[:4])
    for cell in cells:
        record(cell, stations["PR-STK-1"], material_lots=LOTS)
    return [Cell.objects.get(pk=cell.pk) for cell in cells]


def test_stacking_counts_each_cell_under_its_lots_and_the_roll_they_were_cut_from(stacked):
    assert_every_lot_summed_as_counted()
    sheet, roll = _summed(_lot(SHEET)), _summed(_lot(ROLL))
    assert (sheet["consumptions"], sheet["cells"], sheet["in_process"]) == (4, 4, 4)
    # Nothing consumed the roll itself; every cell of its sheets is its cell.
    assert (roll["consumptions"], roll["cells"], roll["in_process"]) == (0, 4, 4)


def test_a_cell_that_took_two_sheets_of_one_roll_counts_once_under_the_roll(stacked):
    _consume(stacked[0], OTHER_SHEET)
    _consume(stacked[1], ROLL)
    assert_every_lot_summed_as_counted()
    assert _summed(_lot(ROLL))["cells"] == 4
    assert _summed(_lot(ROLL))["consumptions"] == 1
    assert _summed(_lot(OTHER_SHEET))["cells"] == 1


def test_consumptions_added_in_one_statement_count_each_cell_once(proto_batch):
    cells = list(proto_batch.cells.order_by("position"))
    sheets = [_lot(SHEET), _lot(OTHER_SHEET)]
    Consumption.objects.bulk_create(
        Consumption(cell=cell, lot=lot, role="cathode") for cell in cells for lot in sheets
    )
    assert_every_lot_summed_as_counted()
    assert _summed(_lot(ROLL))["cells"] == len(cells)


def test_a_cell_changing_status_moves_between_the_counts_of_every_lot_above_it(
    stacked, stations, record, quality_engineer
):
    scrap_cell(stacked[0], by=quality_engineer, reason="dropped")
    record(stacked[1], stations["PR-PRS-1"])
    Cell.objects.filter(pk=stacked[2].pk).update(status=Cell.Status.COMPLETED, next_step=None)
    assert_every_lot_summed_as_counted()
    roll = _summed(_lot(ROLL))
    assert (roll["cells"], roll["in_process"], roll["completed"], roll["scrapped"]) == (4, 2, 1, 1)


def test_removing_a_consumption_takes_the_cell_off_only_where_no_other_keeps_it(stacked):
    _consume(stacked[0], OTHER_SHEET)
    Consumption.objects.filter(cell=stacked[0], lot__code=SHEET).delete()
    Consumption.objects.filter(cell=stacked[1], lot__code=SHEET).delete()
    assert_every_lot_summed_as_counted()
    assert _summed(_lot(ROLL))["cells"] == 3  # the first cell took the roll's other sheet
    assert _summed(_lot(SHEET))["cells"] == 2


def test_a_changed_consumption_counts_as_the_one_it_became(stacked):
    Consumption.objects.filter(cell=stacked[0], lot__code=SHEET).update(lot=_lot(OTHER_SHEET))
    assert_every_lot_summed_as_counted()


def test_moving_a_sheet_to_another_roll_counts_both_rolls_again(stacked):
    new_roll = MaterialLotFactory(code="CAT-ROLL-2612-B", material="Composite cathode roll")
    MaterialLot.objects.filter(code=SHEET).update(parent=new_roll)
    assert_every_lot_summed_as_counted()
    assert _summed(_lot(ROLL))["cells"] == 0
    assert _summed(new_roll)["cells"] == 4
    # A status changed by the lot's service changes no count.
    MaterialLot.objects.filter(code=SHEET).update(status=MaterialLot.Status.QUARANTINE)
    assert_every_lot_summed_as_counted()


def test_compaction_folds_each_lots_rows_into_one_with_the_same_sums(
    stacked, stations, record, quality_engineer
):
    scrap_cell(stacked[0], by=quality_engineer, reason="dropped")
    record(stacked[1], stations["PR-PRS-1"])
    Consumption.objects.filter(cell=stacked[3]).delete()
    before = {lot.code: _summed(lot) for lot in MaterialLot.objects.all()}
    rows = LotConsumerCount.objects.count()
    assert rows > LotConsumerCount.objects.values("lot").distinct().count()

    removed = compact_lot_consumer_counts()

    assert removed == rows - LotConsumerCount.objects.count() > 0
    assert {lot.code: _summed(lot) for lot in MaterialLot.objects.all()} == before
    per_lot = LotConsumerCount.objects.values("lot").distinct().count()
    assert LotConsumerCount.objects.count() == per_lot
    assert not LotConsumerCount.objects.filter(
        consumptions=0, cells=0, in_process=0, completed=0, scrapped=0
    ).exists()
    assert_every_lot_summed_as_counted()
    assert compact_task() == 0  # beat's task: nothing left to fold

    record(stacked[2], stations["PR-PRS-1"])  # counted on after a compaction
    assert_every_lot_summed_as_counted()


def test_the_migrations_backfill_counts_as_the_triggers_do(stacked, quality_engineer):
    scrap_cell(stacked[0], by=quality_engineer, reason="dropped")
    _consume(stacked[1], OTHER_SHEET)
    migration = importlib.import_module("batches.migrations.0029_lot_consumer_counts")
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM batches_lotconsumercount")
        cursor.execute(migration.BACKFILL)
    assert_every_lot_summed_as_counted()
    assert (
        LotConsumerCount.objects.count()
        == LotConsumerCount.objects.values("lot").distinct().count()
    )


# ---------------------------------------------------------------- what reads them


def test_the_lots_list_shows_each_lots_own_consumers(stacked, signed_in, operator):
    response = signed_in(operator).get(reverse("lots"))
    shown = {lot.code: lot.cell_count for lot in response.context["page"]}
    assert shown[SHEET] == 4 and shown[ROLL] == 0 and shown[OTHER_SHEET] == 0


def test_the_lot_page_counts_the_cells_below_the_lot_and_pages_its_consumptions(
    stacked, signed_in, operator, quality_engineer
):
    _consume(stacked[0], OTHER_SHEET)
    scrap_cell(stacked[1], by=quality_engineer, reason="dropped")
    response = signed_in(operator).get(reverse("lot", args=[ROLL]))
    counts = response.context["counts"]
    assert counts["total"] == 4 and counts["in_process"] == 3 and counts["scrapped"] == 1
    assert counts["completed"] == 0
    # Five consumptions below the roll: the first cell's two sheets, one row each.
    assert response.context["page"].paginator.count == 5
    assert len(response.context["page"]) == 5


def test_the_api_lists_lots_without_counting_their_consumers(plant, api_as, operator):
    listed = api_as(operator).get("/api/v1/lots").json()["results"]
    assert listed and all("cell_count" not in lot for lot in listed)


def test_the_api_lists_a_lots_cells_in_the_order_they_were_made(stacked, api_as, operator):
    _consume(stacked[0], OTHER_SHEET)
    made = [cell.serial for cell in sorted(stacked, key=lambda cell: cell.pk)]
    client = api_as(operator)
    assert client.get(f"/api/v1/lots/{ROLL}").json()["cells"] == made
    assert client.get(f"/api/v1/lots/{SHEET}").json()["cells"] == made
    assert client.get(f"/api/v1/lots/{OTHER_SHEET}").json()["cells"] == made[:1]
    assert client.get("/api/v1/lots/SE-2611-02").json()["cells"] == []


def test_the_browsable_api_shows_a_lots_cells_too(stacked, signed_in, operator):
    response = signed_in(operator).get(f"/api/v1/lots/{SHEET}", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert stacked[0].serial in response.content.decode()


def test_consumptions_are_vacuumed_for_their_inserts_early():
    """So a lot's consumers are read from the (lot, cell) index alone."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT reloptions FROM pg_class WHERE relname = 'batches_consumption'")
        (options,) = cursor.fetchone()
    assert "autovacuum_vacuum_insert_threshold=100000" in options
    assert "autovacuum_vacuum_insert_scale_factor=0" in options


@pytest.mark.django_db(transaction=True)
def test_compaction_leaves_the_rows_of_a_transaction_still_open_and_counts_them_after(
    proto_batch, stations, record
):
    """Beat folds while results are being applied: what it cannot see yet it leaves alone, and
    waits for no one."""
    first, second = proto_batch.cells.order_by("position")[:2]
    record(first, stations["PR-STK-1"], material_lots=LOTS)
    sheet = _lot(SHEET)
    with psycopg.connect(processes.test_database_url(), autocommit=False) as applying:
        applying.execute("SET lock_timeout = '5s'")
        applying.execute(
            "INSERT INTO batches_consumption (cell_id, lot_id, role, quantity, recorded_at)"
            " VALUES (%s, %s, 'cathode', 1, now())",
            [second.pk, sheet.pk],
        )
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '5s'")  # waiting for the open one would fail
            try:
                compact_lot_consumer_counts()
            finally:
                cursor.execute("RESET lock_timeout")
        assert _summed(sheet)["cells"] == 1
        applying.commit()
    assert _summed(sheet)["cells"] == 2
    assert_every_lot_summed_as_counted()
    compact_lot_consumer_counts()
    assert_every_lot_summed_as_counted()
