"""The recipe version a cell is served in place of the one in force: an experiment arm's.

Quality's experiments write these rows when an experiment starts; track-in serves the version and
the step engine judges the cell's result by it, so a run names the setpoints the cell was made to.
Kept here, beside the cells, because the step engine (batches) must read it and quality sits above.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from django.db import models

from lines.models import Recipe, RecipeVersion, Station
from lines.selectors import applicable_recipe, recipe_version_for

if TYPE_CHECKING:
    from batches.models import Cell


class CellRecipeOverride(models.Model):
    """Cell `cell` runs `recipe` at `version` (an experiment arm's), whatever is released."""

    cell = models.ForeignKey(
        "batches.Cell", on_delete=models.CASCADE, related_name="recipe_overrides"
    )
    recipe = models.ForeignKey(Recipe, on_delete=models.PROTECT, related_name="+")
    version = models.ForeignKey(RecipeVersion, on_delete=models.PROTECT, related_name="+")
    source = models.CharField(max_length=60, help_text="What set it, e.g. experiment:EXP-1/A2")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["cell", "recipe"], name="batches_cellrecipeoverride_one_per_recipe"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.cell_id}: {self.version_id} ({self.source})"


def overrides_of(cell_ids: Iterable[int]) -> dict[tuple[int, int], RecipeVersion]:
    """(cell id, recipe id) -> the version served instead, for the cells given, in one query."""
    rows = CellRecipeOverride.objects.filter(cell_id__in=list(cell_ids)).select_related(
        "version__recipe"
    )
    return {(row.cell_id, row.recipe_id): row.version for row in rows}


def version_served_to(cell: Cell, station: Station) -> RecipeVersion | None:
    """The version `station` runs for `cell` now: its arm's if it has one, else the version in
    force for its design (None without a released recipe)."""
    recipe = applicable_recipe(station.line_id, station.kind, cell.batch.design_id)
    if recipe is not None:
        override = (
            CellRecipeOverride.objects.filter(cell=cell, recipe=recipe)
            .select_related("version__recipe")
            .first()
        )
        if override is not None:
            return override.version
    return recipe_version_for(station, cell.batch.design_id)
