"""Energy per cell and cost per kWh per batch: the units the whole programme is judged by.

Cost per kWh of a batch = (material cost rolled up through genealogy + process cost of every cell
started) / discharge energy of the GOOD cells only, so yield enters the figure. A good cell passed
formation, is not scrapped and was not graded NG. Energy is the measured discharge energy
(the integral of V x |I| dt over the first discharge), never capacity x nominal voltage.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, DecimalField, ExpressionWrapper, F, Sum, Window
from django.db.models.functions import RowNumber

from batches.models import Batch, Cell, Consumption
from batches.selectors import latest_measurements
from lines.models import Line

ENERGY = "discharge_energy_wh"
MASS = "cell_mass_g"
THICKNESS = "thickness_after_um"

# The programme's targets, $/kWh: FY2028, and thereafter.
TARGET_FY2028 = Decimal("75")
TARGET_AFTER = Decimal("65")


@dataclass(frozen=True)
class CellEnergy:
    energy_wh: float
    mass_g: float
    volume_l: float

    @property
    def wh_per_kg(self) -> float:
        return self.energy_wh / (self.mass_g / 1000)

    @property
    def wh_per_l(self) -> float:
        return self.energy_wh / self.volume_l


def cell_energy(cell: Cell) -> CellEnergy | None:
    """Wh, mass and volume of one cell; mass and thickness measured where they were, else the design's."""
    values = latest_measurements([cell.pk], [ENERGY, MASS, THICKNESS], passed_only=False).get(
        cell.pk, {}
    )
    if ENERGY not in values:
        return None
    design = cell.batch.design
    thickness_mm = values[THICKNESS] / 1000 if THICKNESS in values else design.thickness_mm
    return CellEnergy(
        energy_wh=values[ENERGY],
        mass_g=values.get(MASS, design.target_mass_g),
        volume_l=design.length_mm * design.width_mm * thickness_mm / 1e6,
    )


@dataclass(frozen=True)
class BatchEconomics:
    material_cost: Decimal
    process_cost: Decimal
    cells_started: int
    good_cells: int
    good_energy_wh: float

    @property
    def total_cost(self) -> Decimal:
        return self.material_cost + self.process_cost

    @property
    def cost_per_kwh(self) -> Decimal | None:
        if self.good_energy_wh <= 0:
            return None
        return (self.total_cost / Decimal(str(self.good_energy_wh / 1000))).quantize(
            Decimal("0.01")
        )

    @property
    def standing(self) -> str:
        """Against the targets, as the pages colour it: "ok" at or below the later target,
        "warn" at or below the FY2028 target, "bad" above it, "" without a figure."""
        per_kwh = self.cost_per_kwh
        if per_kwh is None:
            return ""
        if per_kwh <= TARGET_AFTER:
            return "ok"
        return "warn" if per_kwh <= TARGET_FY2028 else "bad"

    @property
    def yield_pct(self) -> float | None:
        return 100 * self.good_cells / self.cells_started if self.cells_started else None


def batches_economics(batches: Iterable[Batch]) -> dict[int, BatchEconomics]:
    """Economics of many batches in a fixed number of queries (for line and home pages)."""
    batches = list(batches)
    if not batches:
        return {}
    ids = [b.pk for b in batches]
    material = dict(
        Consumption.objects.filter(cell__batch_id__in=ids)
        .values("cell__batch_id")
        .annotate(
            cost=Sum(
                ExpressionWrapper(
                    F("quantity") * F("lot__unit_cost"),
                    output_field=DecimalField(max_digits=20, decimal_places=6),
                )
            )
        )
        .values_list("cell__batch_id", "cost")
    )
    started = dict(
        Cell.objects.filter(batch_id__in=ids)
        .exclude(status=Cell.Status.PLANNED)
        .values("batch_id")
        .annotate(n=Count("id"))
        .values_list("batch_id", "n")
    )
    good = {
        cell_id: batch_id
        for cell_id, batch_id in Cell.objects.filter(batch_id__in=ids)
        .exclude(status=Cell.Status.SCRAPPED)
        .exclude(grade="NG")
        .values_list("id", "batch_id")
    }
    energy = latest_measurements(good, [ENERGY], passed_only=True)
    good_energy: dict[int, list[float]] = {}
    for cell_id, values in energy.items():
        good_energy.setdefault(good[cell_id], []).append(values[ENERGY])
    return {
        b.pk: BatchEconomics(
            material_cost=(material.get(b.pk) or Decimal("0")).quantize(Decimal("0.01")),
            process_cost=(b.line.process_cost_per_cell * started.get(b.pk, 0)).quantize(
                Decimal("0.01")
            ),
            cells_started=started.get(b.pk, 0),
            good_cells=len(good_energy.get(b.pk, [])),
            good_energy_wh=sum(good_energy.get(b.pk, [])),
        )
        for b in batches
    }


def batch_economics(batch: Batch) -> BatchEconomics:
    return batches_economics([batch])[batch.pk]


# The line and home pages follow a line's cost over its most recently started batches.
COST_TREND_BATCHES = 12


def cost_trends(
    lines: Iterable[Line], batches: int = COST_TREND_BATCHES
) -> dict[int, list[tuple[Batch, BatchEconomics]]]:
    """Each line's last `batches` started batches, oldest first, with their economics: a fixed
    number of queries for any number of lines."""
    lines = list(lines)
    recent = list(
        Batch.objects.filter(line__in=lines, started_at__isnull=False)
        .annotate(
            recency=Window(RowNumber(), partition_by=F("line_id"), order_by=F("started_at").desc())
        )
        .filter(recency__lte=batches)
        .select_related("line")
        .order_by("started_at")
    )
    economics = batches_economics(recent)
    trends: dict[int, list[tuple[Batch, BatchEconomics]]] = {line.pk: [] for line in lines}
    for batch in recent:
        trends[batch.line_id].append((batch, economics[batch.pk]))
    return trends


def cost_trend(line: Line) -> list[tuple[Batch, BatchEconomics]]:
    return cost_trends([line])[line.pk]


def pooled(economics: Iterable[BatchEconomics]) -> BatchEconomics:
    """Several batches as one: their costs over their good cells' energy (not an average of
    their costs per kWh, which would weigh a batch of 10 cells like one of 1,000)."""
    economics = list(economics)
    return BatchEconomics(
        material_cost=sum((e.material_cost for e in economics), Decimal("0")),
        process_cost=sum((e.process_cost for e in economics), Decimal("0")),
        cells_started=sum(e.cells_started for e in economics),
        good_cells=sum(e.good_cells for e in economics),
        good_energy_wh=sum(e.good_energy_wh for e in economics),
    )
