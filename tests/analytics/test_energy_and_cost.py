from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from analytics.energy import BatchEconomics, batch_economics, cell_energy, cost_trends, pooled
from batches.models import Batch
from batches.services import create_batch, scrap_cell, start_batch
from lines.models import CellDesign, Line, Route

LOTS = {"cathode": "CAT-2611-A-01", "electrolyte": "SE-2611-01", "pouch": "POUCH-2611-01"}


@pytest.fixture
def formed_batch(proto_batch, stations, record, quality_engineer):
    """Ten cells stacked from three lots and pressed; eight formed at 16 Wh, two scrapped."""
    cells = list(proto_batch.cells.order_by("position"))
    for cell in cells:
        record(cell, stations["PR-STK-1"], material_lots=LOTS)
        record(
            cell,
            stations["PR-PRS-1"],
            equipment_ref="L1",
            measurements={"thickness_after_um": 5000.0},
        )
    for cell in cells[:8]:
        record(cell, stations["PR-FRM-1"], measurements={"discharge_energy_wh": 16.0})
    for cell in cells[8:]:
        scrap_cell(cell, by=quality_engineer, reason="crack at pressing")
    return proto_batch


def test_cost_per_kwh_counts_every_cell_started_but_only_good_cells_energy(formed_batch):
    # Bill of materials of SSB-5AH-P1: cathode 0.140 m2 at $5.80, SE 0.150 m2 at $2.10, 1 pouch at $0.18.
    material_per_cell = (
        Decimal("0.140") * Decimal("5.80") + Decimal("0.150") * Decimal("2.10") + Decimal("0.18")
    )
    process_per_cell = Decimal("0.95")  # the prototype line's process cost per cell

    economics = batch_economics(formed_batch)

    assert economics.cells_started == 10
    assert economics.good_cells == 8
    assert economics.material_cost == (10 * material_per_cell).quantize(Decimal("0.01"))
    assert economics.process_cost == 10 * process_per_cell
    expected = (10 * (material_per_cell + process_per_cell)) / Decimal("0.128")
    assert abs(economics.cost_per_kwh - expected) < Decimal("0.05")
    assert economics.yield_pct == 80.0


def test_a_batch_without_good_energy_has_no_cost_per_kwh(proto_batch, stations, record):
    record(proto_batch.cells.first(), stations["PR-STK-1"], material_lots=LOTS)
    economics = batch_economics(proto_batch)
    assert economics.cost_per_kwh is None
    assert economics.material_cost > 0


def test_cell_energy_uses_measured_thickness_and_the_designs_mass(formed_batch):
    cell = formed_batch.cells.get(position=1)
    energy = cell_energy(cell)
    volume_l = 100.0 * 70.0 * 5.0 / 1e6  # design length x width x measured thickness (mm)
    assert energy.wh_per_kg == pytest.approx(16.0 / 0.060)
    assert energy.wh_per_l == pytest.approx(16.0 / volume_l)


def test_a_cell_not_yet_formed_has_no_energy(proto_batch):
    assert cell_energy(proto_batch.cells.first()) is None


def test_the_batch_page_shows_cost_per_kwh_against_the_targets(formed_batch, client, line_engineer):
    client.force_login(line_engineer)
    page = client.get(f"/batches/{formed_batch.code}/").content.decode()
    expected = batch_economics(formed_batch).cost_per_kwh
    assert f"${expected}" in page
    assert "$75/kWh FY2028" in page and "above target" in page


def test_the_line_view_shows_the_cost_trend_over_batches(formed_batch, client, line_engineer):
    client.force_login(line_engineer)
    page = client.get("/lines/proto/").content.decode()
    assert "Cost per kWh by batch" in page
    assert formed_batch.code in page and f"${batch_economics(formed_batch).cost_per_kwh}" in page


def test_several_batches_pool_their_costs_over_their_good_energy():
    small = BatchEconomics(
        material_cost=Decimal("10.00"),
        process_cost=Decimal("5.00"),
        cells_started=10,
        good_cells=5,
        good_energy_wh=50.0,
    )
    large = BatchEconomics(
        material_cost=Decimal("600.00"),
        process_cost=Decimal("300.00"),
        cells_started=1000,
        good_cells=900,
        good_energy_wh=14400.0,
    )
    both = pooled([small, large])
    # (15 + 900) $ over 14.45 kWh, not the mean of $300/kWh and $62.50/kWh.
    assert both.cost_per_kwh == (Decimal("915.00") / Decimal("14.45")).quantize(Decimal("0.01"))
    assert (both.cells_started, both.good_cells) == (1010, 905)


def test_the_home_page_shows_each_lines_cost_per_kwh_against_the_targets(
    formed_batch, client, line_engineer
):
    client.force_login(line_engineer)
    page = client.get("/").content.decode()
    expected = batch_economics(formed_batch).cost_per_kwh  # the line's only started batch
    proto = page[page.index('data-line="proto"') : page.index('data-line="yokohama"')]
    costs = proto[proto.index("data-cost") :]
    assert "Last 1 batch" in costs and f"${expected}" in costs
    assert f'Latest, <a href="/batches/{formed_batch.code}/">{formed_batch.code}</a>' in costs
    assert "$75 (FY2028), $65" in proto
    assert expected > 75 and 'class="kpi bad"' in costs  # above the FY2028 target: red
    yokohama = page[page.index('data-line="yokohama"') :]
    assert "Last 0 batches" in yokohama  # nothing started there: no figure, no error


def test_each_lines_cost_trend_holds_its_last_twelve_started_batches_oldest_first(plant):
    started = {}
    for code, route, count in (("proto", "std", 13), ("yokohama", "pilot", 1)):
        line = Line.objects.get(code=code)
        started[code] = [
            start_batch(
                create_batch(
                    line=line,
                    design=CellDesign.objects.get(code="SSB-5AH-P1"),
                    route=Route.objects.get(line=line, code=route),
                    quantity=1,
                    by="test",
                ),
                by="test",
            )
            for _ in range(count)
        ]
    Batch.objects.filter(pk=started["proto"][0].pk).update(
        started_at=timezone.now() - timedelta(days=1)
    )  # the oldest: it falls out of the window
    trends = cost_trends(Line.objects.all())
    proto = Line.objects.get(code="proto")
    assert [b.pk for b, _ in trends[proto.pk]] == [b.pk for b in started["proto"][1:]]
    yokohama = Line.objects.get(code="yokohama")
    assert [b.pk for b, _ in trends[yokohama.pk]] == [started["yokohama"][0].pk]
