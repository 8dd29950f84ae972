"""Every change to an experiment: define it (factors, levels, arms, the cells of each arm),
approve the deviation its out-of-limit setpoints need, start it (each arm's recipe versions are
derived and frozen, and its cells are served them), conclude it or cancel it. Each records an
audit event."""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from audit.services import record_event
from batches.models import Batch, Cell, CellRecipeOverride, MaterialLot, ProcessRun
from core.errors import DomainError, check_transition, require_reason
from lines.models import Recipe, RecipeParameter, RecipeVersion, StationKind
from lines.selectors import applicable_recipe
from quality.experiments.models import Arm, ArmAssignment, ArmRecipeVersion, Experiment, Factor

MAX_ARMS = 32
MAX_LEVELS = 10


def _invalid(errors: dict[str, Any]) -> DomainError:
    return DomainError(
        "invalid",
        _("The request is not valid."),
        status=400,
        errors={k: v if isinstance(v, dict) else [v] for k, v in errors.items()},
    )


@dataclass
class FactorSpec:
    kind: str  # Factor.Kind
    name: str  # parameter name, or material role
    station_kind: str
    levels: list[Any]


@dataclass
class OutOfLimits:
    """An arm's setpoint outside the limits of the released version it is derived from."""

    arm: str
    station_kind: str
    parameter: str
    level: float
    min: float | None
    max: float | None
    recipe: str


def _released(recipe: Recipe) -> RecipeVersion | None:
    return recipe.versions.filter(status=RecipeVersion.Status.RELEASED).first()


def _recipes_of(batches: Sequence[Batch], station_kind: str) -> dict[int, Recipe | None]:
    """Batch id -> the recipe its cells run at `station_kind`."""
    return {
        batch.pk: applicable_recipe(batch.line_id, station_kind, batch.design_id)
        for batch in batches
    }


def _check_factors(batches: Sequence[Batch], factors: Sequence[FactorSpec]) -> None:
    errors: dict[str, str] = {}
    names = [f.name for f in factors]
    if not factors:
        errors["factors"] = "At least one factor."
    elif len(set(names)) != len(names):
        errors["factors"] = "Factor names repeat."
    for i, factor in enumerate(factors):
        key = f"factors[{i}]"
        if factor.station_kind not in StationKind.values:
            errors[key] = f"No station kind {factor.station_kind}."
            continue
        if not 2 <= len(factor.levels) <= MAX_LEVELS or len(set(map(str, factor.levels))) != len(
            factor.levels
        ):
            errors[key] = f"2 to {MAX_LEVELS} distinct levels."
            continue
        if factor.kind == Factor.Kind.PARAMETER:
            if any(isinstance(v, bool) or not isinstance(v, int | float) for v in factor.levels):
                errors[key] = "A parameter's levels are numbers."
                continue
            for batch_id, recipe in _recipes_of(batches, factor.station_kind).items():
                released = _released(recipe) if recipe else None
                if released is None or factor.name not in released.parameters_by_name:
                    errors[key] = (
                        f"No released {factor.station_kind} recipe with a parameter "
                        f"{factor.name} for batch {next(b.code for b in batches if b.pk == batch_id)}."
                    )
                    break
        else:
            if any(not isinstance(v, str) for v in factor.levels):
                errors[key] = "A material factor's levels are lot codes."
                continue
            known = set(
                MaterialLot.objects.filter(code__in=factor.levels, role=factor.name).values_list(
                    "code", flat=True
                )
            )
            if missing := [v for v in factor.levels if v not in known]:
                errors[key] = f"No {factor.name} lot {', '.join(missing)}."
    if errors:
        raise _invalid(errors)


def _arms(
    design: str, factors: Sequence[FactorSpec], arms: Sequence[Mapping[str, Any]] | None
) -> list[tuple[str, dict[str, Any]]]:
    """(code, factor -> level) of every arm: the level combinations of a full factorial, in the
    order of the factors' levels; or the list given."""
    if design == Experiment.Design.FACTORIAL:
        combos = list(itertools.product(*(f.levels for f in factors)))
        if len(combos) > MAX_ARMS:
            raise _invalid({"factors": f"{len(combos)} combinations; at most {MAX_ARMS} arms."})
        return [
            (f"A{i + 1}", {f.name: level for f, level in zip(factors, combo, strict=True)})
            for i, combo in enumerate(combos)
        ]
    if not arms or not 2 <= len(arms) <= MAX_ARMS:
        raise _invalid({"arms": f"2 to {MAX_ARMS} arms."})
    errors = {}
    result = []
    for i, arm in enumerate(arms):
        levels = arm.get("levels") or {}
        if set(levels) != {f.name for f in factors}:
            errors[f"arms[{i}]"] = "A level for every factor, and no other."
        elif any(levels[f.name] not in f.levels for f in factors):
            errors[f"arms[{i}]"] = "Each level is one of its factor's levels."
        result.append((arm["code"], dict(levels)))
    codes = [code for code, _ in result]
    if len(set(codes)) != len(codes):
        errors["arms"] = "Arm codes repeat."
    if len({tuple(sorted(map(str, lv.items()))) for _, lv in result}) != len(result):
        errors.setdefault("arms", "Two arms have the same levels.")
    if errors:
        raise _invalid(errors)
    return result


def balanced(cells: Sequence[Cell], arm_count: int) -> list[int]:
    """The arm index of each cell: round robin over the cells in their order (positions), so
    the counts differ by one at most and every stretch of the batch has every arm."""
    return [i % arm_count for i in range(len(cells))]


def randomised(cells: Sequence[Cell], arm_count: int, seed: int) -> list[int]:
    """The arm index of each cell: a balanced deal in an order shuffled by `seed` (the same seed
    gives the same assignment)."""
    order = list(range(len(cells)))
    random.Random(seed).shuffle(order)
    arm_of = [0] * len(cells)
    for rank, index in enumerate(order):
        arm_of[index] = rank % arm_count
    return arm_of


def _cells_past(cells: Sequence[Cell], station_kinds: set[str]) -> list[str]:
    """The serials of the cells that already have a run at one of the factors' steps."""
    done = set(
        ProcessRun.objects.filter(cell__in=cells, station__kind__in=station_kinds).values_list(
            "cell_id", flat=True
        )
    )
    return [cell.serial for cell in cells if cell.pk in done]


@transaction.atomic
def create_experiment(
    *,
    code: str,
    title: str,
    objective: str = "",
    batches: Sequence[Batch],
    factors: Sequence[FactorSpec],
    design: str,
    arms: Sequence[Mapping[str, Any]] | None = None,
    assignment: str,
    seed: int | None = None,
    manual: Mapping[str, str] | None = None,
    by: Any,
) -> Experiment:
    """Define an experiment in draft, with its arms and the cells assigned to each."""
    if Experiment.objects.filter(code=code).exists():
        raise _invalid({"code": f"An experiment {code} exists."})
    if not batches:
        raise _invalid({"batches": "At least one batch."})
    _check_factors(batches, factors)
    arm_levels = _arms(design, factors, arms)
    cells = list(
        Cell.objects.filter(batch__in=batches)
        .exclude(status=Cell.Status.SCRAPPED)
        .order_by("batch__code", "position")
    )
    if len(cells) < len(arm_levels):
        raise _invalid({"batches": f"{len(cells)} cells for {len(arm_levels)} arms."})
    if past := _cells_past(cells, {f.station_kind for f in factors}):
        raise DomainError(
            "cells_past_step",
            _("%(count)s cells have already been through a factor's step: %(serials)s.")
            % {"count": len(past), "serials": ", ".join(past[:5])},
        )
    codes = [c for c, _ in arm_levels]
    if assignment == Experiment.Assignment.RANDOM:
        if seed is None:
            seed = random.SystemRandom().randrange(2**31)
        arm_of = randomised(cells, len(arm_levels), seed)
    elif assignment == Experiment.Assignment.BALANCED:
        seed = None
        arm_of = balanced(cells, len(arm_levels))
    else:
        seed = None
        arm_of, problems = [], {}
        by_serial = {cell.serial: cell for cell in cells}
        manual = manual or {}
        for serial, arm_code in manual.items():
            if serial not in by_serial:
                problems[serial] = "Not a cell of the experiment's batches."
            elif arm_code not in codes:
                problems[serial] = f"No arm {arm_code}."
        if problems or not manual:
            raise _invalid({"cells": problems or "Assign cells to arms by hand."})
        cells = [by_serial[serial] for serial in manual]
        arm_of = [codes.index(manual[serial]) for serial in manual]
    try:
        with transaction.atomic():
            experiment = Experiment.objects.create(
                code=code,
                title=title,
                objective=objective,
                design=design,
                assignment=assignment,
                seed=seed,
                created_by=by,
            )
    except IntegrityError:
        # Two engineers naming an experiment alike at once: the unique code refuses the second.
        if Experiment.objects.filter(code=code).exists():
            raise _invalid({"code": f"An experiment {code} exists."}) from None
        raise
    experiment.batches.set(batches)
    Factor.objects.bulk_create(
        Factor(
            experiment=experiment,
            position=i,
            kind=f.kind,
            name=f.name,
            station_kind=f.station_kind,
            levels=list(f.levels),
        )
        for i, f in enumerate(factors)
    )
    arm_rows = Arm.objects.bulk_create(
        Arm(experiment=experiment, position=i, code=c, levels=levels)
        for i, (c, levels) in enumerate(arm_levels)
    )
    ArmAssignment.objects.bulk_create(
        ArmAssignment(experiment=experiment, arm=arm_rows[a], cell=cell)
        for cell, a in zip(cells, arm_of, strict=True)
    )
    record_event(
        actor=by,
        verb="experiment_created",
        subject_type="experiment",
        subject=code,
        data={
            "design": design,
            "assignment": assignment,
            "seed": seed,
            "arms": {c: levels for c, levels in arm_levels},
            "batches": [b.code for b in batches],
            "cells": len(cells),
        },
    )
    return experiment


def _parameter_factors(experiment: Experiment) -> list[Factor]:
    return [f for f in experiment.factors.all() if f.kind == Factor.Kind.PARAMETER]


def outside_limits(experiment: Experiment) -> list[OutOfLimits]:
    """The arms' setpoints outside the limits of the released versions they change."""
    batches = list(experiment.batches.all())
    found = []
    for factor in _parameter_factors(experiment):
        recipes = {r for r in _recipes_of(batches, factor.station_kind).values() if r}
        for recipe in sorted(recipes, key=lambda r: r.pk):
            released = _released(recipe)
            limits = released.parameters_by_name.get(factor.name) if released else None
            if limits is None:
                continue
            for arm in experiment.arms.all():
                level = arm.levels[factor.name]
                if limits.in_spec(level) is False:
                    found.append(
                        OutOfLimits(
                            arm.code,
                            factor.station_kind,
                            factor.name,
                            level,
                            limits.min,
                            limits.max,
                            recipe.name,
                        )
                    )
    return found


@transaction.atomic
def approve_deviation(experiment: Experiment, *, note: str, by: Any) -> Experiment:
    """Quality's approval to run the arms' setpoints outside the released limits."""
    experiment = Experiment.objects.select_for_update().get(pk=experiment.pk)
    require_reason(note)
    if experiment.status != Experiment.Status.DRAFT:
        raise DomainError(
            "invalid_transition", _("Only a draft experiment's deviation is approved.")
        )
    experiment.deviation_approved_by = by
    experiment.deviation_approved_at = timezone.now()
    experiment.deviation_note = note
    experiment.save(
        update_fields=["deviation_approved_by", "deviation_approved_at", "deviation_note"]
    )
    record_event(
        actor=by,
        verb="experiment_deviation_approved",
        subject_type="experiment",
        subject=experiment.code,
        reason=note,
        data={"outside_limits": [o.__dict__ for o in outside_limits(experiment)]},
    )
    return experiment


def _derived_parameters(released: RecipeVersion, levels: Mapping[str, float]) -> dict[str, dict]:
    """The released parameters with each overridden target; where the new target leaves the
    limits, the window moves with it (same width around the target), so a run at the arm's
    setpoint is judged by how far it strays from it, as at the released one."""
    parameters = {
        name: p.as_limits() | {"required": p.required}
        for name, p in released.parameters_by_name.items()
    }
    for name, level in levels.items():
        spec = parameters[name]
        inside = (spec["min"] is None or level >= spec["min"]) and (
            spec["max"] is None or level <= spec["max"]
        )
        if not inside:
            if spec["target"] is not None:
                shift = level - spec["target"]
            else:
                shift = level - (
                    spec["min"] if spec["min"] is not None and level < spec["min"] else spec["max"]
                )
            spec["min"] = None if spec["min"] is None else spec["min"] + shift
            spec["max"] = None if spec["max"] is None else spec["max"] + shift
        spec["target"] = float(level)
    return parameters


def _derive(
    recipe: Recipe, arm: Arm, levels: Mapping[str, float], experiment: Experiment, by: Any
) -> RecipeVersion:
    released = _released(recipe)
    # Numbered after the recipe's last version, locked as lines.services numbers a new draft.
    last = recipe.versions.select_for_update().order_by("-version").first()
    number = last.version + 1
    version = RecipeVersion.objects.create(
        recipe=recipe,
        version=number,
        derived_from=released,
        note=f"Experiment {experiment.code} arm {arm.code}: from v{released.version}, "
        + ", ".join(f"{k}={v}" for k, v in levels.items()),
    )
    RecipeParameter.objects.bulk_create(
        RecipeParameter(version=version, name=name, **spec)
        for name, spec in _derived_parameters(released, levels).items()
    )
    # Frozen from here on (the database trigger refuses any later change).
    version.status = RecipeVersion.Status.EXPERIMENT
    version.released_at = timezone.now()
    version.released_by = by
    version.save(update_fields=["status", "released_at", "released_by"])
    return version


@transaction.atomic
def start_experiment(experiment: Experiment, *, by: Any) -> Experiment:
    """Draft -> running: derive and freeze each arm's recipe versions and serve them to its
    cells. Refused while a setpoint outside the released limits has no approved deviation, or
    once a cell has been through a factor's step."""
    experiment = Experiment.objects.select_for_update().get(pk=experiment.pk)
    check_transition(Experiment, experiment.status, Experiment.Status.RUNNING)
    outside = outside_limits(experiment)
    if outside and experiment.deviation_approved_at is None:
        raise DomainError(
            "deviation_required",
            _(
                "Setpoints outside the released limits need a deviation approved by quality: "
                "%(setpoints)s"
            )
            % {
                "setpoints": "; ".join(
                    f"{o.arm} {o.parameter}={o.level} [{o.min}, {o.max}]" for o in outside
                )
            },
        )
    assignments = list(experiment.assignments.select_related("cell__batch", "arm"))
    factors = _parameter_factors(experiment)
    cells = [a.cell for a in assignments]
    if past := _cells_past(cells, {f.station_kind for f in experiment.factors.all()}):
        raise DomainError(
            "cells_past_step",
            _("%(count)s cells have already been through a factor's step: %(serials)s.")
            % {"count": len(past), "serials": ", ".join(past[:5])},
        )
    batches = list(experiment.batches.all())
    overrides = []
    for station_kind in sorted({f.station_kind for f in factors}):
        kind_factors = [f for f in factors if f.station_kind == station_kind]
        recipe_of_batch = _recipes_of(batches, station_kind)
        for arm in experiment.arms.all():
            levels = {f.name: arm.levels[f.name] for f in kind_factors}
            versions: dict[int, RecipeVersion] = {}
            for recipe in {r for r in recipe_of_batch.values() if r}:
                versions[recipe.pk] = _derive(recipe, arm, levels, experiment, by)
                ArmRecipeVersion.objects.create(arm=arm, version=versions[recipe.pk])
            for a in assignments:
                if a.arm_id == arm.pk:
                    recipe = recipe_of_batch[a.cell.batch_id]
                    overrides.append(
                        CellRecipeOverride(
                            cell=a.cell,
                            recipe=recipe,
                            version=versions[recipe.pk],
                            source=f"experiment:{experiment.code}/{arm.code}",
                        )
                    )
    taken = CellRecipeOverride.objects.filter(
        cell__in=cells, recipe__in={o.recipe for o in overrides}
    ).values_list("cell__serial", flat=True)
    if taken := list(taken):
        raise DomainError(
            "cell_in_another_experiment",
            _("%(count)s cells are served another experiment's setpoints: %(serials)s.")
            % {"count": len(taken), "serials": ", ".join(taken[:5])},
        )
    CellRecipeOverride.objects.bulk_create(overrides)
    experiment.status = Experiment.Status.RUNNING
    experiment.started_at = timezone.now()
    experiment.save(update_fields=["status", "started_at"])
    record_event(
        actor=by,
        verb="experiment_started",
        subject_type="experiment",
        subject=experiment.code,
        data={"overrides": len(overrides), "outside_limits": len(outside)},
    )
    return experiment


def _release_cells(experiment: Experiment) -> int:
    """Cells not yet through the step go back to the released recipe."""
    deleted, _ = CellRecipeOverride.objects.filter(
        source__startswith=f"experiment:{experiment.code}/"
    ).delete()
    return deleted


@transaction.atomic
def conclude_experiment(experiment: Experiment, *, conclusion: str, by: Any) -> Experiment:
    """Running -> concluded, with what was learnt."""
    experiment = Experiment.objects.select_for_update().get(pk=experiment.pk)
    check_transition(Experiment, experiment.status, Experiment.Status.CONCLUDED)
    if not conclusion or not conclusion.strip():
        raise _invalid({"conclusion": "Write down what the experiment showed."})
    released = _release_cells(experiment)
    experiment.status = Experiment.Status.CONCLUDED
    experiment.conclusion = conclusion
    experiment.concluded_by = by
    experiment.ended_at = timezone.now()
    experiment.save(update_fields=["status", "conclusion", "concluded_by", "ended_at"])
    record_event(
        actor=by,
        verb="experiment_concluded",
        subject_type="experiment",
        subject=experiment.code,
        reason=conclusion,
        data={"cells_back_on_released_recipe": released},
    )
    return experiment


@transaction.atomic
def cancel_experiment(experiment: Experiment, *, reason: str, by: Any) -> Experiment:
    experiment = Experiment.objects.select_for_update().get(pk=experiment.pk)
    check_transition(Experiment, experiment.status, Experiment.Status.CANCELLED)
    require_reason(reason)
    released = _release_cells(experiment)
    experiment.status = Experiment.Status.CANCELLED
    experiment.ended_at = timezone.now()
    experiment.save(update_fields=["status", "ended_at"])
    record_event(
        actor=by,
        verb="experiment_cancelled",
        subject_type="experiment",
        subject=experiment.code,
        reason=reason,
        data={"cells_back_on_released_recipe": released},
    )
    return experiment
