"""Batch figures (economics, energy spreads) are stored once computed and are only ever read
while current: whatever changes their inputs forgets them in the same transaction."""

from __future__ import annotations

from decimal import Decimal

import psycopg
import pytest
from django.db import connection

from analytics.energy import batch_economics, batch_energy_spreads, batch_figures
from analytics.models import BatchFigures, FiguresEpoch
from batches.models import MaterialLot
from batches.services import hold_cell

LOTS = {"cathode": "CAT-2611-A-01", "electrolyte": "SE-2611-01", "pouch": "POUCH-2611-01"}


@pytest.fixture
def half_formed(proto_batch, stations, record):
    """Ten cells stacked and pressed, five formed at 16 Wh."""
    cells = list(proto_batch.cells.order_by("position"))
    for cell in cells:
        record(cell, stations["PR-STK-1"], material_lots=LOTS)
        record(cell, stations["PR-PRS-1"], measurements={"thickness_after_um": 5000.0})
    for cell in cells[:5]:
        record(cell, stations["PR-FRM-1"], measurements={"discharge_energy_wh": 16.0})
    return proto_batch


def test_figures_are_stored_and_a_new_result_forgets_them(half_formed, stations, record):
    assert batch_economics(half_formed).good_cells == 5
    stored = BatchFigures.objects.get(batch=half_formed)
    assert (stored.good_cells, stored.good_energy_wh) == (5, 80.0)
    assert batch_energy_spreads(half_formed)[0].wh.n == 5  # read back from the row

    record(
        half_formed.cells.get(position=6),
        stations["PR-FRM-1"],
        measurements={"discharge_energy_wh": 17.0},
    )
    assert not BatchFigures.objects.filter(batch=half_formed).exists()
    economics = batch_economics(half_formed)
    assert (economics.good_cells, economics.good_energy_wh) == (6, 97.0)
    assert BatchFigures.objects.get(batch=half_formed).good_cells == 6


def test_a_hold_over_a_cell_forgets_its_batchs_figures(half_formed, quality_engineer):
    assert batch_economics(half_formed).good_cells == 5
    hold_cell(half_formed.cells.get(position=1), by=quality_engineer, reason="swollen pouch")
    assert not BatchFigures.objects.filter(batch=half_formed).exists()
    assert batch_economics(half_formed).good_cells == 4


def test_a_lots_new_unit_cost_leaves_every_stored_figure_behind(half_formed):
    before = batch_economics(half_formed).material_cost
    epoch = FiguresEpoch.objects.filter(pk=1).values_list("value", flat=True).first() or 0
    MaterialLot.objects.filter(code="CAT-2611-A-01").update(unit_cost=Decimal("6.80"))
    assert FiguresEpoch.objects.get(pk=1).value == epoch + 1
    # The cathode: 0.140 m2 per cell, ten cells, $1.00 more per m2.
    assert batch_economics(half_formed).material_cost == before + Decimal("1.40")
    assert BatchFigures.objects.get(batch=half_formed).epoch == epoch + 1


def test_figures_are_not_stored_while_a_writer_holds_the_batch(half_formed):
    """A writer changing the batch holds its lock (shared) until it commits: a page computing
    meanwhile shows what it computed and stores nothing the writer may have made stale."""
    settings = connection.settings_dict
    writer = psycopg.connect(
        dbname=settings["NAME"],
        user=settings["USER"],
        host=settings["HOST"] or None,
        port=settings["PORT"] or None,
        password=settings["PASSWORD"] or None,
    )
    try:
        writer.execute(
            "SELECT pg_advisory_xact_lock_shared(hashtextextended('batch-figures:' || %s, 0))",
            [half_formed.pk],
        )
        assert batch_figures([half_formed])[half_formed.pk][0].good_cells == 5
        assert not BatchFigures.objects.filter(batch=half_formed).exists()
        writer.rollback()
        batch_figures([half_formed])
        assert BatchFigures.objects.filter(batch=half_formed).exists()
    finally:
        writer.close()
