"""A cell's energy and energy density, and where each figure came from.

Wh/kg and Wh/L are quoted from a rated discharge: a test at a stated C-rate and temperature,
done at end-of-line grading on the cell out of its formation fixture (DOMAIN.md: "discharge
energy E over the rated discharge"; the battery passport's "rated capacity and energy"). The
formation discharge is slow, warm and under fixture pressure, so its energy reads high; it is used
only where a cell has no rated test yet, and then labelled as from formation, never mixed in
silently. A rated energy counts only with its conditions sent in the same run: a figure without
its C-rate and temperature is not a rating.

Mass and thickness are the cell's own, weighed and gauged at grading; where they were not sent, the
design's target mass and thickness stand in, labelled as the design's. The stack's thickness after
pressing is not the cell's (no pouch, no tabs, and under the press), so it is not used.

Lives beside the cells rather than in analytics so the cell API (batches.api) can report it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from batches.models import Cell, Measurement, ProcessRun

RATED_ENERGY = "rated_discharge_energy_wh"
RATED_C_RATE = "rated_discharge_c_rate"
RATED_TEMPERATURE = "rated_discharge_temperature_c"
FORMATION_ENERGY = "discharge_energy_wh"
MASS = "cell_mass_g"
THICKNESS = "cell_thickness_mm"

NAMES = (RATED_ENERGY, RATED_C_RATE, RATED_TEMPERATURE, FORMATION_ENERGY, MASS, THICKNESS)

RATED = "rated"
FORMATION = "formation"
ENERGY_SOURCES = (RATED, FORMATION)
MEASURED = "measured"
DESIGN = "design"
SIZE_SOURCES = (MEASURED, DESIGN)  # where a mass or thickness came from


@dataclass(frozen=True)
class CellEnergy:
    """The energy of one cell, its mass and volume, and the source of each."""

    energy_wh: float
    source: str  # RATED or FORMATION
    mass_g: float
    mass_source: str  # MEASURED or DESIGN
    thickness_mm: float
    thickness_source: str  # MEASURED or DESIGN
    length_mm: float
    width_mm: float
    c_rate: float | None = None  # the rated test's conditions; None for formation
    temperature_c: float | None = None
    formation_wh: float | None = None  # the formation discharge's, whichever is quoted

    @property
    def volume_l(self) -> float:
        return self.length_mm * self.width_mm * self.thickness_mm / 1e6

    @property
    def wh_per_kg(self) -> float:
        return self.energy_wh / (self.mass_g / 1000)

    @property
    def wh_per_l(self) -> float:
        return self.energy_wh / self.volume_l

    @property
    def rated(self) -> bool:
        return self.source == RATED


def cells_energy(cells: Iterable[Cell], *, passed_only: bool = False) -> dict[int, CellEnergy]:
    """Energy of many cells in one query (their `batch.design` loaded); a cell with neither a
    rated nor a formation energy is left out. `passed_only`: energies from passing runs only."""
    cells = {cell.pk: cell for cell in cells}
    if not cells:
        return {}
    rows = Measurement.objects.filter(run__cell_id__in=list(cells), name__in=NAMES)
    # A re-run step's values win: rows in the order the runs finished.
    rows = rows.order_by("run__cell_id", "run__finished_at", "run_id").values_list(
        "run__cell_id", "run_id", "run__verdict", "name", "value"
    )
    runs: dict[int, dict[int, dict[str, float]]] = {}
    passed: dict[int, bool] = {}
    for cell_id, run_id, verdict, name, value in rows:
        runs.setdefault(cell_id, {}).setdefault(run_id, {})[name] = value
        passed[run_id] = verdict == ProcessRun.Verdict.PASS
    figures = {}
    for cell_id, by_run in runs.items():
        rated = formation = mass = thickness = None
        for run_id, values in by_run.items():
            # A zero or negative reading is a fault of the scale or gauge, not a cell's size.
            if values.get(MASS, 0) > 0:
                mass = values[MASS]
            if values.get(THICKNESS, 0) > 0:
                thickness = values[THICKNESS]
            if passed_only and not passed[run_id]:
                continue
            if {RATED_ENERGY, RATED_C_RATE, RATED_TEMPERATURE} <= values.keys():
                rated = values
            if FORMATION_ENERGY in values:
                formation = values[FORMATION_ENERGY]
        if rated is None and formation is None:
            continue
        design = cells[cell_id].batch.design
        figures[cell_id] = CellEnergy(
            energy_wh=rated[RATED_ENERGY] if rated else formation,
            source=RATED if rated else FORMATION,
            c_rate=rated[RATED_C_RATE] if rated else None,
            temperature_c=rated[RATED_TEMPERATURE] if rated else None,
            mass_g=mass if mass is not None else design.target_mass_g,
            mass_source=MEASURED if mass is not None else DESIGN,
            thickness_mm=thickness if thickness is not None else design.thickness_mm,
            thickness_source=MEASURED if thickness is not None else DESIGN,
            length_mm=design.length_mm,
            width_mm=design.width_mm,
            formation_wh=formation,
        )
    return figures


def cell_energy(cell: Cell) -> CellEnergy | None:
    return cells_energy([cell]).get(cell.pk)
