"""Reads of the lines' master data: recipes with what each version changed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Prefetch

from lines.models import Recipe, RecipeVersion, StationKind

# Steps in the order cells meet them, for pages that list per step.
KIND_ORDER = {kind: i for i, kind in enumerate(StationKind.values)}


# ---------------------------------------------------------------- recipes


@dataclass
class ParameterChange:
    name: str
    change: str  # added, removed, changed
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    fields: list[str]


@dataclass
class VersionHistory:
    version: RecipeVersion
    changes: list[ParameterChange]


LIMIT_FIELDS = ("unit", "target", "min", "max", "required")


def _limits(parameter: Any) -> dict[str, Any]:
    return {name: getattr(parameter, name) for name in LIMIT_FIELDS}


def parameter_diff(before: RecipeVersion | None, after: RecipeVersion) -> list[ParameterChange]:
    """What changed in the parameters from one version to the next (added, removed, changed)."""
    old = {p.name: _limits(p) for p in before.parameters.all()} if before else {}
    new = {p.name: _limits(p) for p in after.parameters.all()}
    changes = []
    for name in sorted(old.keys() | new.keys()):
        if name not in old:
            changes.append(ParameterChange(name, "added", None, new[name], list(LIMIT_FIELDS)))
        elif name not in new:
            changes.append(ParameterChange(name, "removed", old[name], None, []))
        else:
            fields = [f for f in LIMIT_FIELDS if old[name][f] != new[name][f]]
            if fields:
                changes.append(ParameterChange(name, "changed", old[name], new[name], fields))
    return changes


def recipe_histories(*, line: str = "") -> list[tuple[Recipe, list[VersionHistory]]]:
    """Every recipe with its versions, newest first, and what each changed from the one before."""
    versions = RecipeVersion.objects.select_related("released_by").prefetch_related("parameters")
    recipes = Recipe.objects.select_related("line").prefetch_related(
        Prefetch("versions", queryset=versions.order_by("version"))
    )
    if line:
        recipes = recipes.filter(line__code=line)
    result = []
    for recipe in recipes.order_by("line__code", "station_kind"):
        ordered = list(recipe.versions.all())
        history = [
            VersionHistory(version, parameter_diff(ordered[i - 1] if i else None, version))
            for i, version in enumerate(ordered)
        ]
        result.append((recipe, list(reversed(history))))
    result.sort(key=lambda item: (item[0].line.code, KIND_ORDER.get(item[0].station_kind, 99)))
    return result
