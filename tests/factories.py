"""Test data built to order (factory_boy), for tests whose subject is not the demo's plant.

Each factory makes a valid row with the fewest choices spelled out; a test names what it is about.
Master data that has a lifecycle goes through its service: a recipe version is released with
`release_recipe_version`, a batch is planned with `create_batch` (so its cells exist and its
event is written), as the application would.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import factory
from django.contrib.auth.models import User

from batches.models import Batch, DesignMaterial, MaterialLot, MaterialRole
from batches.services import create_batch
from lines.models import CellDesign, Line, Recipe, Route, RouteStep, Station, StationKind
from lines.services import create_recipe_version, release_recipe_version


class LineFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Line
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"line-{n}")
    name = factory.LazyAttribute(lambda line: f"Line {line.code}")
    site = "Test site"
    process_cost_per_cell = Decimal("1.50")


class StationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Station

    line = factory.SubFactory(LineFactory)
    kind = StationKind.STACKING
    code = factory.Sequence(lambda n: f"ST-{n}")
    name = factory.LazyAttribute(lambda station: f"{station.kind} {station.code}")


class RouteFactory(factory.django.DjangoModelFactory):
    """A route through the given station kinds in order (stacking, pressing, formation by
    default)."""

    class Meta:
        model = Route
        skip_postgeneration_save = True

    line = factory.SubFactory(LineFactory)
    code = factory.Sequence(lambda n: f"route-{n}")
    name = factory.LazyAttribute(lambda route: f"Route {route.code}")

    @factory.post_generation
    def kinds(route: Route, create: bool, kinds: list[str] | None, **_: Any) -> None:
        kinds = kinds or [StationKind.STACKING, StationKind.PRESSING, StationKind.FORMATION]
        for position, kind in enumerate(kinds, start=1):
            RouteStep.objects.create(route=route, position=position, station_kind=kind)


class CellDesignFactory(factory.django.DjangoModelFactory):
    """A design with a bill of materials: one cathode and one electrolyte sheet a cell."""

    class Meta:
        model = CellDesign
        skip_postgeneration_save = True

    code = factory.Sequence(lambda n: f"design-{n}")
    name = factory.LazyAttribute(lambda design: f"Design {design.code}")
    nominal_capacity_ah = 5.0
    nominal_voltage_v = 3.7
    layer_count = 20
    target_mass_g = 60.0
    length_mm = 100.0
    width_mm = 80.0
    thickness_mm = 5.0
    voltage_min_v = 2.5
    voltage_max_v = 4.25

    @factory.post_generation
    def materials(design: CellDesign, create: bool, roles: list[str] | None, **_: Any) -> None:
        for role in roles or [MaterialRole.CATHODE, MaterialRole.ELECTROLYTE]:
            DesignMaterial.objects.create(
                design=design, role=role, quantity_per_cell=Decimal("0.01"), unit="m2"
            )


class MaterialLotFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MaterialLot

    code = factory.Sequence(lambda n: f"LOT-{n}")
    role = MaterialRole.CATHODE
    material = "Composite cathode sheet"
    supplier = "Test supplier"
    quantity = Decimal("100")
    unit = "m2"
    unit_cost = Decimal("20")
    received_at = factory.LazyFunction(lambda: datetime(2026, 11, 1, tzinfo=UTC))


def released_recipe(
    line: Line, kind: str, parameters: dict[str, dict[str, Any]], *, by: Any = "test"
) -> Recipe:
    """A recipe of `kind` on `line` with one released version of `parameters`."""
    recipe = Recipe.objects.create(line=line, station_kind=kind, name=f"{line.code} {kind}")
    release_recipe_version(create_recipe_version(recipe, by=by, parameters=parameters), by=by)
    return recipe


def planned_batch(
    *,
    quantity: int = 3,
    by: User | str = "test",
    line: Line | None = None,
    kinds: list[str] | None = None,
    lots: dict[str, MaterialLot] | None = None,
) -> Batch:
    """A planned batch of a new design on a new route through `kinds` (stacking, pressing,
    formation by default), of a new line unless given, with a new cathode and electrolyte lot."""
    line = line or LineFactory()
    lots = lots or {
        MaterialRole.CATHODE: MaterialLotFactory(role=MaterialRole.CATHODE),
        MaterialRole.ELECTROLYTE: MaterialLotFactory(
            role=MaterialRole.ELECTROLYTE, material="Sulfide solid-electrolyte sheet"
        ),
    }
    return create_batch(
        line=line,
        design=CellDesignFactory(),
        route=RouteFactory(line=line, kinds=kinds),
        quantity=quantity,
        by=by,
        material_lots={role: lot.code for role, lot in lots.items()},
    )
