from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError
from django.utils import timezone

from batches.services import StepResult, record_step
from core.errors import DomainError
from lines.models import Recipe, RecipeParameter, RecipeVersion, Station, StationKind
from lines.services import (
    active_recipe_version,
    create_recipe_version,
    release_recipe_version,
    supersede_recipe,
)
from tests.factories import StationFactory, planned_batch, released_recipe

PRESSING = {"peak_pressure_mpa": {"unit": "MPa", "target": 500.0, "min": 375.0, "max": 700.0}}
FIRST = {
    "peak_pressure_mpa": {"unit": "MPa", "target": 450.0, "min": 350.0, "max": 650.0},
    "dwell_s": {"unit": "s", "target": 300.0, "min": 240.0, "max": 420.0},
}
IN_FORCE = {**FIRST, "dwell_s": {"unit": "s", "target": 300.0, "min": 270.0, "max": 360.0}}


@pytest.fixture
def press(db) -> Station:
    return StationFactory(kind=StationKind.PRESSING)


@pytest.fixture
def pressing_recipe(press, line_engineer) -> Recipe:
    """A pressing recipe with a superseded first version and a second one in force."""
    recipe = released_recipe(press.line, StationKind.PRESSING, FIRST)
    supersede_recipe(recipe, by=line_engineer, parameters=IN_FORCE, note="tighter dwell")
    return recipe


def test_superseding_releases_the_new_version_and_keeps_the_old_one(
    pressing_recipe, line_engineer, press
):
    before = active_recipe_version(press)
    new = supersede_recipe(
        pressing_recipe, by=line_engineer, parameters=PRESSING, note="narrower window"
    )
    before.refresh_from_db()
    assert new.version == before.version + 1
    assert new.status == "released" and before.status == "superseded"
    assert active_recipe_version(press) == new
    # the old version's parameters are untouched
    assert {p.name: p.as_limits() for p in before.parameters.all()} == IN_FORCE


def test_a_draft_is_editable_until_released(pressing_recipe, line_engineer):
    draft = create_recipe_version(pressing_recipe, by=line_engineer, parameters=PRESSING)
    RecipeParameter.objects.filter(version=draft).update(max=650.0)
    RecipeParameter.objects.create(version=draft, name="dwell_s", unit="s", min=60.0)
    draft.note = "tuned"
    draft.save()
    release_recipe_version(draft, by=line_engineer)
    assert draft.parameters.get(name="peak_pressure_mpa").max == 650.0


@pytest.mark.parametrize("status", ["released", "superseded"])
def test_a_released_version_cannot_be_changed_in_any_way(pressing_recipe, status):
    version = pressing_recipe.versions.get(status=status)
    parameter = version.parameters.first()
    attempts = [
        lambda: RecipeParameter.objects.filter(pk=parameter.pk).update(max=9999.0),
        lambda: RecipeParameter.objects.filter(pk=parameter.pk).delete(),
        lambda: RecipeParameter.objects.create(version=version, name="sneaky", min=0.0),
        lambda: RecipeVersion.objects.filter(pk=version.pk).update(note="rewritten history"),
        lambda: RecipeVersion.objects.filter(pk=version.pk).update(status="draft"),
        lambda: RecipeVersion.objects.filter(pk=version.pk).delete(),
    ]
    for attempt in attempts:
        with pytest.raises((IntegrityError, ProtectedError)), transaction.atomic():
            attempt()
    parameter.refresh_from_db()
    version.refresh_from_db()
    assert version.status == status
    assert not version.parameters.filter(name="sneaky").exists()


@pytest.mark.parametrize("status", ["released", "superseded"])
def test_releasing_a_version_that_is_not_a_draft_is_refused(pressing_recipe, line_engineer, status):
    version = pressing_recipe.versions.filter(status=status).first()
    with pytest.raises(DomainError) as refused:
        release_recipe_version(version, by=line_engineer)
    assert refused.value.code == "invalid_transition"


def test_a_process_run_keeps_the_version_it_ran_under(press, pressing_recipe, line_engineer):
    cell = planned_batch(line=press.line, kinds=[StationKind.PRESSING]).cells.first()
    pressed = StepResult(
        occurred_at=timezone.now(),
        measurements={"peak_pressure_mpa": 505.0, "dwell_s": 301.0},
        equipment_ref="L1",
    )
    run = record_step(cell, press, pressed, by="station:test")
    old = run.recipe_version
    assert old == pressing_recipe.versions.get(status="released")
    supersede_recipe(pressing_recipe, by=line_engineer, parameters=PRESSING, note="v next")
    run.refresh_from_db()
    assert run.recipe_version == old
    dwell = run.measurements.get(name="dwell_s")
    assert dwell.min == old.parameters.get(name="dwell_s").min  # judged against the old limits


@pytest.mark.parametrize(
    ("limits", "constraint"),
    [
        ({"min": 10.0, "max": 1.0}, "min_le_max"),
        ({"min": 10.0, "target": 5.0}, "min_le_target"),
        ({"max": 10.0, "target": 50.0}, "target_le_max"),
    ],
)
def test_parameter_limits_must_be_ordered(pressing_recipe, line_engineer, limits, constraint):
    with pytest.raises(IntegrityError, match=constraint), transaction.atomic():
        create_recipe_version(pressing_recipe, by=line_engineer, parameters={"x": limits})
    assert pressing_recipe.versions.filter(status="draft").count() == 0


def test_one_released_version_per_recipe(pressing_recipe):
    draft = RecipeVersion.objects.create(recipe=pressing_recipe, version=99)
    with pytest.raises(IntegrityError, match="one_released_per_recipe"), transaction.atomic():
        RecipeVersion.objects.filter(pk=draft.pk).update(
            status="released", released_at=timezone.now()
        )


def test_released_parameters_are_read_once_a_process_and_a_new_release_is_seen(
    pressing_recipe, line_engineer, press, django_assert_num_queries
):
    before = active_recipe_version(press).parameters_by_name
    with django_assert_num_queries(1):  # which version is active; its parameters are kept
        assert active_recipe_version(press).parameters_by_name == before
    new = supersede_recipe(pressing_recipe, by=line_engineer, parameters=PRESSING, note="v next")
    active = active_recipe_version(press)
    assert active == new
    assert {name: p.as_limits() for name, p in active.parameters_by_name.items()} == PRESSING
    # The same id released at another moment (tables emptied and filled again) is read anew.
    other = RecipeVersion(pk=new.pk, status="released", released_at=new.created_at)
    with django_assert_num_queries(1):
        assert set(other.parameters_by_name) == set(PRESSING)


def test_a_drafts_parameters_are_read_as_they_are_now(pressing_recipe, line_engineer):
    draft = create_recipe_version(pressing_recipe, by=line_engineer, parameters=PRESSING)
    assert draft.parameters_by_name["peak_pressure_mpa"].max == 700.0
    RecipeParameter.objects.filter(version=draft).update(max=650.0)
    again = RecipeVersion.objects.get(pk=draft.pk)
    assert again.parameters_by_name["peak_pressure_mpa"].max == 650.0
