"""Reads of the lines' master data: recipes with what each version changed, and which recipe
version a station runs for a cell."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.postgres.aggregates import ArrayAgg
from django.contrib.postgres.fields import ArrayField
from django.db.models import CharField, Prefetch, Q, QuerySet, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from lines.models import Recipe, RecipeVersion, Station, StationKind, Zone

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
        by_id = {version.pk: version for version in ordered}
        history, before = [], None
        for version in ordered:
            # An experiment arm's version changes the one it was derived from; the line's own
            # versions follow each other, whatever arms were derived in between.
            if version.status == RecipeVersion.Status.EXPERIMENT:
                history.append(
                    VersionHistory(
                        version, parameter_diff(by_id.get(version.derived_from_id), version)
                    )
                )
                continue
            history.append(VersionHistory(version, parameter_diff(before, version)))
            before = version
        result.append((recipe, list(reversed(history))))
    result.sort(key=lambda item: (item[0].line.code, KIND_ORDER.get(item[0].station_kind, 99)))
    return result


# ---------------------------------------------------------------- which version a station runs


def applicable_recipe(line_id: int, station_kind: str, design_id: int | None) -> Recipe | None:
    """The recipe for a design at a kind of station on a line: the design's own, else the line's
    default (written for no design)."""
    recipes = {
        recipe.design_id: recipe
        for recipe in Recipe.objects.filter(
            Q(design_id=design_id) | Q(design__isnull=True),
            line_id=line_id,
            station_kind=station_kind,
        )
    }
    return recipes.get(design_id) or recipes.get(None)


def versions_out_of_draft(recipe: Recipe) -> list[RecipeVersion]:
    """The versions a station may have run (released, or released once and superseded since),
    in the order they were released; an experiment arm's versions are never in force."""
    return list(
        recipe.versions.filter(
            status__in=(RecipeVersion.Status.RELEASED, RecipeVersion.Status.SUPERSEDED)
        )
        .select_related("recipe")
        .order_by("released_at", "version")
    )


def version_in_force_at(versions: Sequence[RecipeVersion], at: datetime) -> RecipeVersion:
    """Of a recipe's versions in release order, the one in force at `at`; before the first
    release, the first (a result dated before it was still made to that recipe)."""
    in_force = versions[0]
    for version in versions:
        if version.released_at > at:
            break
        in_force = version
    return in_force


def version_in_force(
    line_id: int, station_kind: str, design_id: int | None, *, at: datetime | None = None
) -> RecipeVersion | None:
    """The version in force now (or at `at`) for a design at a kind of station on a line; None
    without a released recipe."""
    recipe = applicable_recipe(line_id, station_kind, design_id)
    versions = versions_out_of_draft(recipe) if recipe else []
    return version_in_force_at(versions, at or timezone.now()) if versions else None


def recipe_version_for(
    station: Station, design_id: int | None, *, at: datetime | None = None
) -> RecipeVersion | None:
    """The version a station runs now (or at `at`) for a cell of a design."""
    return version_in_force(station.line_id, station.kind, design_id, at=at)


# ---------------------------------------------------------------- dry-room zones


def zones_with_station_codes() -> QuerySet:
    """Dry-room zones with `station_codes`, their stations' codes in order, in one query."""
    return Zone.objects.annotate(
        station_codes=Coalesce(
            ArrayAgg("stations__code", order_by="stations__code", filter=Q(stations__isnull=False)),
            Value([], output_field=ArrayField(CharField())),
        )
    ).order_by("code")
