"""Energy per cell and cost per kWh per batch: the units the whole programme is judged by.

Cost per kWh of a batch = (material cost rolled up through genealogy + process cost of every cell
started) / discharge energy of the GOOD cells only, so yield enters the figure. A good cell passed
formation, is not scrapped, was not graded NG and is not on an open hold (a held cell counts once
quality releases it). Energy is the measured discharge energy (the integral of V x |I| dt), never
capacity x nominal voltage: a cell's rated discharge where it had one, else its formation
discharge, and the figures say how many cells were counted from which (batches.energy).

The trend is over finished (completed) batches: a batch still in progress has spent on every cell
it started but has not yet formed them all, so its cost per kWh is not yet a figure.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Count, DecimalField, ExpressionWrapper, F, Sum, Window
from django.db.models.functions import RowNumber

from analytics.models import BatchFigures, FiguresEpoch
from batches.energy import FORMATION, MEASURED, RATED, CellEnergy, cell_energy, cells_energy
from batches.models import Batch, Cell, Consumption
from lines.models import Line

__all__ = ["CellEnergy", "cell_energy"]

# The programme's targets, $/kWh: FY2028, and thereafter.
TARGET_FY2028 = Decimal("75")
TARGET_AFTER = Decimal("65")


@dataclass(frozen=True)
class Spread:
    """Minimum, median and maximum of one figure over n cells."""

    n: int
    min: float
    median: float
    max: float

    @classmethod
    def of(cls, values: list[float]) -> Spread | None:
        if not values:
            return None
        return cls(len(values), min(values), statistics.median(values), max(values))


@dataclass(frozen=True)
class EnergySpread:
    """A batch's energy densities from one source (rated test or formation), never mixed."""

    source: str
    wh: Spread
    wh_per_kg: Spread
    wh_per_l: Spread
    mass_measured: int  # of the n cells, how many were weighed (the rest: the design's mass)
    thickness_measured: int


def batch_energy_spreads(batch: Batch) -> list[EnergySpread]:
    """Wh, Wh/kg and Wh/L over the batch's cells that have an energy, one row per source
    (rated first); scrapped cells are left out."""
    return batch_figures([batch])[batch.pk][1]


def _energy_spreads(batch: Batch) -> list[EnergySpread]:
    cells = batch.cells.exclude(status=Cell.Status.SCRAPPED).select_related("batch__design")
    figures = cells_energy(cells).values()
    spreads = []
    for source in (RATED, FORMATION):
        group = [f for f in figures if f.source == source]
        if group:
            spreads.append(
                EnergySpread(
                    source=source,
                    wh=Spread.of([f.energy_wh for f in group]),
                    wh_per_kg=Spread.of([f.wh_per_kg for f in group]),
                    wh_per_l=Spread.of([f.wh_per_l for f in group]),
                    mass_measured=sum(f.mass_source == MEASURED for f in group),
                    thickness_measured=sum(f.thickness_source == MEASURED for f in group),
                )
            )
    return spreads


@dataclass(frozen=True)
class BatchEconomics:
    material_cost: Decimal
    process_cost: Decimal
    cells_started: int
    good_cells: int
    good_energy_wh: float
    rated_cells: int = 0  # of the good cells, those whose energy is from a rated test

    @property
    def formation_cells(self) -> int:
        return self.good_cells - self.rated_cells

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
    """Economics of many batches (for line and home pages)."""
    return {pk: economics for pk, (economics, _) in batch_figures(batches).items()}


def _economics(batches: Iterable[Batch]) -> dict[int, BatchEconomics]:
    """Computed from the cells, in a fixed number of queries."""
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
    good = list(
        Cell.objects.filter(batch_id__in=ids)
        .exclude(status=Cell.Status.SCRAPPED)
        .exclude(grade="NG")
        .with_hold_state()
        .filter(held=False)
        .select_related("batch__design")
    )
    # Passed formation: a good cell's formation energy is from a passing run, and a rated energy
    # counts only from a passing test.
    good_energy: dict[int, list[CellEnergy]] = {}
    formed = cells_energy(good, passed_only=True)
    batch_of = {cell.pk: cell.batch_id for cell in good}
    for cell_id, figure in formed.items():
        if figure.formation_wh is None:  # rated, but no passing formation: not a good cell
            continue
        good_energy.setdefault(batch_of[cell_id], []).append(figure)
    return {
        b.pk: BatchEconomics(
            material_cost=(material.get(b.pk) or Decimal("0")).quantize(Decimal("0.01")),
            process_cost=(b.line.process_cost_per_cell * started.get(b.pk, 0)).quantize(
                Decimal("0.01")
            ),
            cells_started=started.get(b.pk, 0),
            good_cells=len(good_energy.get(b.pk, [])),
            good_energy_wh=sum(f.energy_wh for f in good_energy.get(b.pk, [])),
            rated_cells=sum(f.rated for f in good_energy.get(b.pk, [])),
        )
        for b in batches
    }


def batch_economics(batch: Batch) -> BatchEconomics:
    return batches_economics([batch])[batch.pk]


Figures = tuple[BatchEconomics, list[EnergySpread]]


def batch_figures(batches: Iterable[Batch]) -> dict[int, Figures]:
    """Each batch's economics and energy spreads: stored rows where current (BatchFigures),
    computed from the cells for the others and stored for the next page.

    The epoch is read before anything else, so a cost changed meanwhile leaves a row behind it.
    A batch's row is stored only under its lock (exclusive; the database's triggers take it
    shared before forgetting figures, see analytics migration 0003), taken before computing: if a
    writer is changing the batch, the figures are computed for this page and not stored.
    """
    batches = list(batches)
    if not batches:
        return {}
    epoch = FiguresEpoch.objects.filter(pk=1).values_list("value", flat=True).first() or 0
    figures = {
        row.batch_id: _from_row(row)
        for row in BatchFigures.objects.filter(batch__in=batches, epoch=epoch)
    }
    missing = [b for b in batches if b.pk not in figures]
    if missing:
        with transaction.atomic():
            locked = _lock_figures_of([b.pk for b in missing])
            economics = _economics(missing)
            for batch in missing:
                figures[batch.pk] = (economics[batch.pk], _energy_spreads(batch))
            BatchFigures.objects.filter(batch_id__in=locked).delete()  # of an older epoch
            BatchFigures.objects.bulk_create(
                _to_row(batch_id, epoch, figures[batch_id]) for batch_id in locked
            )
    return figures


def _lock_figures_of(batch_ids: list[int]) -> list[int]:
    """The batches whose lock was free (taken until the transaction ends), in id order."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM unnest(%s::bigint[]) AS id"
            " WHERE pg_try_advisory_xact_lock(hashtextextended('batch-figures:' || id, 0))"
            " ORDER BY id",
            [sorted(batch_ids)],
        )
        return [row[0] for row in cursor.fetchall()]


def _to_row(batch_id: int, epoch: int, figures: Figures) -> BatchFigures:
    economics, spreads = figures
    return BatchFigures(
        batch_id=batch_id,
        epoch=epoch,
        material_cost=economics.material_cost,
        process_cost=economics.process_cost,
        cells_started=economics.cells_started,
        good_cells=economics.good_cells,
        good_energy_wh=economics.good_energy_wh,
        rated_cells=economics.rated_cells,
        energy_spreads=[dataclasses.asdict(spread) for spread in spreads],
    )


def _from_row(row: BatchFigures) -> Figures:
    economics = BatchEconomics(
        material_cost=row.material_cost,
        process_cost=row.process_cost,
        cells_started=row.cells_started,
        good_cells=row.good_cells,
        good_energy_wh=row.good_energy_wh,
        rated_cells=row.rated_cells,
    )
    spreads = [
        EnergySpread(
            **{
                **spread,
                **{
                    name: Spread(**spread[name]) if spread[name] else None
                    for name in ("wh", "wh_per_kg", "wh_per_l")
                },
            }
        )
        for spread in row.energy_spreads
    ]
    return economics, spreads


# The line and home pages follow a line's cost over its most recently finished batches.
COST_TREND_BATCHES = 12


def cost_trends(
    lines: Iterable[Line], batches: int = COST_TREND_BATCHES
) -> dict[int, list[tuple[Batch, BatchEconomics]]]:
    """Each line's last `batches` completed batches, oldest first, with their economics: a fixed
    number of queries for any number of lines. Batches in progress are left out (see above)."""
    lines = list(lines)
    recent = list(
        Batch.objects.filter(line__in=lines, status=Batch.Status.COMPLETED)
        .annotate(
            recency=Window(
                RowNumber(),
                partition_by=F("line_id"),
                order_by=[F("completed_at").desc(), F("id").desc()],
            )
        )
        .filter(recency__lte=batches)
        .select_related("line")
        .order_by("completed_at", "id")
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
        rated_cells=sum(e.rated_cells for e in economics),
    )
