from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from analytics.energy import (
    BatchEconomics,
    batch_economics,
    batch_energy_spreads,
    cell_energy,
    cost_trend,
    cost_trends,
    pooled,
)
from batches.models import Batch, Cell
from batches.services import (
    StepResult,
    create_batch,
    hold_cell,
    record_step,
    release_hold,
    scrap_cell,
    start_batch,
)
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
    proto_batch.refresh_from_db()  # completed: every cell formed or scrapped
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


def test_without_a_rated_test_the_energy_is_formations_over_the_designs_mass_and_size(
    formed_batch,
):
    cell = formed_batch.cells.get(position=1)
    energy = cell_energy(cell)
    # SSB-5AH-P1: 60 g, 100 x 70 x 5.5 mm. The stack's thickness after pressing (5.0 mm) is not
    # the cell's and is not used.
    assert (energy.source, energy.mass_source, energy.thickness_source) == (
        "formation",
        "design",
        "design",
    )
    assert energy.wh_per_kg == pytest.approx(16.0 / 0.060)
    assert energy.wh_per_l == pytest.approx(16.0 / (100.0 * 70.0 * 5.5 / 1e6))
    assert energy.c_rate is None and energy.temperature_c is None


def test_a_cell_not_yet_formed_has_no_energy(proto_batch):
    assert cell_energy(proto_batch.cells.first()) is None


def test_the_batch_page_shows_cost_per_kwh_against_the_targets(formed_batch, client, line_engineer):
    client.force_login(line_engineer)
    page = client.get(f"/batches/{formed_batch.code}/").content.decode()
    expected = batch_economics(formed_batch).cost_per_kwh
    assert f"${expected}" in page
    assert "$75.00/kWh FY2028" in page and "above target" in page


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
    both = pooled([small, large], "USD")
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
    assert formed_batch.status == "completed"  # every cell formed or scrapped
    assert "Last 1 finished batch" in costs and f"${expected}" in costs
    assert f'Latest, <a href="/batches/{formed_batch.code}/">{formed_batch.code}</a>' in costs
    assert "$75.00 (FY2028), $65.00" in proto  # the targets in USD, as money prints them
    assert expected > 75 and 'class="kpi bad"' in costs  # above the FY2028 target: red
    yokohama = page[page.index('data-line="yokohama"') :]
    assert "Last 0 finished batches" in yokohama  # nothing finished there: no figure, no error


def _finished_batches(line_code: str, route: str, count: int) -> list[Batch]:
    """`count` one-cell batches, each started and finished (its cell scrapped), in order."""
    line = Line.objects.get(code=line_code)
    finished = []
    for _ in range(count):
        batch = start_batch(
            create_batch(
                line=line,
                design=CellDesign.objects.get(code="SSB-5AH-P1"),
                route=Route.objects.get(line=line, code=route),
                quantity=1,
                by="test",
            ),
            by="test",
        )
        scrap_cell(batch.cells.get(), by="test", reason="test")
        batch.refresh_from_db()
        assert batch.status == Batch.Status.COMPLETED
        finished.append(batch)
    return finished


def test_each_lines_cost_trend_holds_its_last_twelve_finished_batches_oldest_first(plant):
    finished = {"proto": _finished_batches("proto", "std", 13)}
    finished["yokohama"] = _finished_batches("yokohama", "pilot", 1)
    Batch.objects.filter(pk=finished["proto"][0].pk).update(
        completed_at=timezone.now() - timedelta(days=1)
    )  # the oldest: it falls out of the window
    proto = Line.objects.get(code="proto")
    # Started after the others and still in progress: never in the trend.
    running = start_batch(
        create_batch(
            line=proto,
            design=CellDesign.objects.get(code="SSB-5AH-P1"),
            route=Route.objects.get(line=proto, code="std"),
            quantity=2,
            by="test",
        ),
        by="test",
    )
    trends = cost_trends(Line.objects.all())
    assert [b.pk for b, _ in trends[proto.pk]] == [b.pk for b in finished["proto"][1:]]
    assert running.pk not in [b.pk for b, _ in trends[proto.pk]]
    yokohama = Line.objects.get(code="yokohama")
    assert [b.pk for b, _ in trends[yokohama.pk]] == [finished["yokohama"][0].pk]


# ---------------------------------------------------------------- what the trend counts


MATERIAL_PER_PROTO_CELL = (
    Decimal("0.140") * Decimal("5.80") + Decimal("0.150") * Decimal("2.10") + Decimal("0.18")
)
PROCESS_PER_PROTO_CELL = Decimal("0.95")


def test_the_cost_trend_leaves_out_a_batch_still_in_progress(
    formed_batch, plant, line_engineer, stations, record
):
    proto = Line.objects.get(code="proto")
    running = create_batch(
        line=proto,
        design=CellDesign.objects.get(code="SSB-5AH-P1"),
        route=Route.objects.get(line=proto, code="std"),
        quantity=4,
        by=line_engineer,
    )
    first = running.cells.get(position=1)
    for code in ("PR-STK-1", "PR-PRS-1", "PR-FRM-1"):
        record(first, stations[code], material_lots=LOTS if code == "PR-STK-1" else {})
    running.refresh_from_db()
    assert running.status == Batch.Status.IN_PROGRESS

    trend = cost_trend(proto)

    assert [b.code for b, _ in trend] == [formed_batch.code]
    # 10 cells started, 8 good at 16 Wh each: (10 x (material + process)) / 0.128 kWh.
    expected = (10 * (MATERIAL_PER_PROTO_CELL + PROCESS_PER_PROTO_CELL)) / Decimal("0.128")
    assert abs(trend[0][1].cost_per_kwh - expected) < Decimal("0.05")


def test_a_cell_on_an_open_hold_is_not_good_until_quality_releases_it(
    formed_batch, quality_engineer
):
    held = formed_batch.cells.get(position=3)
    hold = hold_cell(held, by=quality_engineer, reason="swollen pouch")
    total = 10 * (MATERIAL_PER_PROTO_CELL + PROCESS_PER_PROTO_CELL)

    economics = batch_economics(formed_batch)
    assert (economics.good_cells, economics.good_energy_wh) == (7, 7 * 16.0)
    assert abs(economics.cost_per_kwh - total / Decimal("0.112")) < Decimal("0.05")
    assert cost_trend(formed_batch.line)[0][1].good_cells == 7

    release_hold(hold, by=quality_engineer, disposition="release", reason="pouch within spec")
    economics = batch_economics(formed_batch)
    assert (economics.good_cells, economics.good_energy_wh) == (8, 8 * 16.0)
    assert abs(economics.cost_per_kwh - total / Decimal("0.128")) < Decimal("0.05")


# ---------------------------------------------------------------- rated energy, measured size

PILOT_LOTS = {"cathode": "CAT-2611-A-01", "electrolyte": "SE-2611-01", "pouch": "POUCH-2611-01"}


@pytest.fixture
def pilot_batch(plant, line_engineer, stations, record):
    """Three cells of SSB-20AH-Y1 (190 g, 160 x 110 x 9.0 mm) through stacking to aging, formed
    at 70 Wh each: grading is left to each test."""
    line = Line.objects.get(code="yokohama")
    batch = create_batch(
        line=line,
        design=CellDesign.objects.get(code="SSB-20AH-Y1"),
        route=Route.objects.get(line=line, code="pilot"),
        quantity=3,
        by=line_engineer,
    )
    for cell in batch.cells.order_by("position"):
        record(cell, stations["YK-STK-1"], material_lots=PILOT_LOTS)
        record(cell, stations["YK-PRS-1"], equipment_ref="W1")
        record(cell, stations["YK-FRM-1"], measurements={"discharge_energy_wh": 70.0})
        record(cell, stations["YK-AGE-1"])
    return batch


def grade(cell: Cell, station, **measurements: float):
    """A grading result with exactly these readings (and a DCIR, which the recipe requires)."""
    return record_step(
        cell,
        station,
        StepResult(
            occurred_at=timezone.now(),
            measurements={"dcir_10s_mohm": 4.0, **measurements},
        ),
        by=f"station:{station.code}",
    )


RATED = {"rated_discharge_c_rate": 0.33, "rated_discharge_temperature_c": 25.0}


def test_energy_density_is_the_rated_energy_over_the_mass_and_thickness_measured_at_grading(
    pilot_batch, stations
):
    cell = pilot_batch.cells.get(position=1)
    grade(
        cell,
        stations["YK-GRD-1"],
        rated_discharge_energy_wh=66.0,
        cell_mass_g=195.0,
        cell_thickness_mm=9.2,
        **RATED,
    )
    energy = cell_energy(cell)
    assert (energy.source, energy.mass_source, energy.thickness_source) == (
        "rated",
        "measured",
        "measured",
    )
    assert energy.energy_wh == 66.0 and energy.formation_wh == 70.0
    assert (energy.c_rate, energy.temperature_c) == (0.33, 25.0)
    assert energy.wh_per_kg == pytest.approx(66.0 / 0.195)  # 338.5 Wh/kg
    assert energy.wh_per_l == pytest.approx(66.0 / (160 * 110 * 9.2 / 1e6))  # 407.6 Wh/L


def test_a_size_not_measured_at_grading_is_the_designs_and_says_so(pilot_batch, stations):
    cell = pilot_batch.cells.get(position=1)
    grade(cell, stations["YK-GRD-1"], rated_discharge_energy_wh=66.0, cell_mass_g=195.0, **RATED)
    energy = cell_energy(cell)
    assert (energy.mass_source, energy.thickness_source) == ("measured", "design")
    assert energy.wh_per_kg == pytest.approx(66.0 / 0.195)
    assert energy.wh_per_l == pytest.approx(66.0 / (160 * 110 * 9.0 / 1e6))  # the design's 9.0 mm

    other = pilot_batch.cells.get(position=2)
    grade(other, stations["YK-GRD-1"], rated_discharge_energy_wh=64.0, **RATED)
    energy = cell_energy(other)
    assert (energy.mass_source, energy.thickness_source) == ("design", "design")
    assert energy.wh_per_kg == pytest.approx(64.0 / 0.190)


def test_an_energy_sent_without_its_c_rate_and_temperature_is_not_a_rating(pilot_batch, stations):
    cell = pilot_batch.cells.get(position=1)
    grade(cell, stations["YK-GRD-1"], rated_discharge_energy_wh=66.0, cell_mass_g=195.0)
    energy = cell_energy(cell)
    assert (energy.source, energy.energy_wh) == ("formation", 70.0)
    assert energy.wh_per_kg == pytest.approx(70.0 / 0.195)  # the weighed mass still counts


def test_a_batchs_cost_counts_rated_energies_and_its_spread_keeps_the_sources_apart(
    pilot_batch, stations
):
    first, second, third = pilot_batch.cells.order_by("position")
    grade(first, stations["YK-GRD-1"], rated_discharge_energy_wh=66.0, cell_mass_g=200.0, **RATED)
    grade(second, stations["YK-GRD-1"], rated_discharge_energy_wh=62.0, cell_mass_g=190.0, **RATED)
    grade(third, stations["YK-GRD-1"])  # no rated test: formation's 70 Wh, labelled
    pilot_batch.refresh_from_db()
    assert pilot_batch.status == Batch.Status.COMPLETED

    economics = batch_economics(pilot_batch)
    # BOM of SSB-20AH-Y1 for the lots consumed: cathode 0.700 m2 at $5.80, SE 0.740 m2 at
    # $2.10, a pouch at $0.18; the pilot line's process cost $1.60 per cell.
    per_cell = (
        Decimal("0.700") * Decimal("5.80")
        + Decimal("0.740") * Decimal("2.10")
        + Decimal("0.18")
        + Decimal("1.60")
    )
    assert (economics.good_cells, economics.rated_cells, economics.formation_cells) == (3, 2, 1)
    assert economics.good_energy_wh == pytest.approx(66.0 + 62.0 + 70.0)
    assert abs(economics.cost_per_kwh - 3 * per_cell / Decimal("0.198")) < Decimal("0.05")

    rated, formation = batch_energy_spreads(pilot_batch)
    assert (rated.source, rated.wh.n, formation.source, formation.wh.n) == (
        "rated",
        2,
        "formation",
        1,
    )
    assert (rated.wh.min, rated.wh.median, rated.wh.max) == (62.0, 64.0, 66.0)
    # 66 Wh / 0.200 kg = 330 and 62 Wh / 0.190 kg = 326.3 Wh/kg: median their mean.
    assert rated.wh_per_kg.min == pytest.approx(62.0 / 0.190)
    assert rated.wh_per_kg.max == pytest.approx(330.0)
    assert rated.wh_per_kg.median == pytest.approx((330.0 + 62.0 / 0.190) / 2)
    assert rated.wh_per_l.max == pytest.approx(66.0 / (160 * 110 * 9.0 / 1e6))
    assert (rated.mass_measured, rated.thickness_measured) == (2, 0)
    assert formation.wh_per_kg.median == pytest.approx(70.0 / 0.190)


def test_the_cell_page_and_api_show_the_energy_density_and_where_it_came_from(
    pilot_batch, stations, client, line_engineer, api_as
):
    cell = pilot_batch.cells.get(position=1)
    grade(
        cell,
        stations["YK-GRD-1"],
        rated_discharge_energy_wh=66.0,
        cell_mass_g=195.0,
        cell_thickness_mm=9.2,
        **RATED,
    )
    client.force_login(line_engineer)
    page = client.get(f"/cells/{cell.serial}/").content.decode()
    panel = page[page.index('id="energy"') :]
    assert "<dd data-wh-per-kg>338</dd>" in panel  # 66 / 0.195
    assert "<dd data-wh-per-l>408</dd>" in panel  # 66 / 0.16192
    assert "rated discharge at 0.33 C and 25.0 °C" in panel and "weighed at grading" in panel

    body = api_as(line_engineer).get(f"/api/v1/cells/{cell.serial}").json()
    assert body["energy"]["source"] == "rated"
    assert body["energy"]["wh"] == 66.0
    assert body["energy"]["wh_per_kg"] == pytest.approx(66.0 / 0.195)
    assert body["energy"]["wh_per_l"] == pytest.approx(66.0 / (160 * 110 * 9.2 / 1e6))
    assert (body["energy"]["mass_source"], body["energy"]["thickness_source"]) == (
        "measured",
        "measured",
    )

    unformed = create_batch(
        line=pilot_batch.line,
        design=pilot_batch.design,
        route=pilot_batch.route,
        quantity=1,
        by=line_engineer,
    ).cells.get()
    assert api_as(line_engineer).get(f"/api/v1/cells/{unformed.serial}").json()["energy"] is None


def test_the_cell_page_labels_an_energy_from_formation(formed_batch, client, line_engineer):
    client.force_login(line_engineer)
    page = client.get(f"/cells/{formed_batch.cells.get(position=1).serial}/").content.decode()
    panel = page[page.index('id="energy"') :]
    assert "From the formation discharge: no rated test yet" in panel
    assert "<dd data-wh-per-kg>267</dd>" in panel  # 16 Wh / 0.060 kg, the design's mass
    assert "design value (not weighed)" in panel and "design value (not gauged)" in panel
