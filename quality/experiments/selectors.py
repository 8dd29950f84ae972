"""Reads of experiments: the list, one with its arms and counts, and each cell's value of a
measured feature with its arm (the last value measured, should a step have been repeated)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Prefetch, QuerySet

from batches.models import Measurement, ProcessRun
from quality.experiments.models import Arm, ArmAssignment, ArmRecipeVersion, Experiment, Factor
from quality.experiments.statistics import Results, results


def experiments() -> QuerySet[Experiment]:
    """Experiments, newest first, with their counts of arms and cells."""
    return (
        Experiment.objects.select_related("created_by")
        .annotate(
            cell_count=Count("assignments", distinct=True), arm_count=Count("arms", distinct=True)
        )
        .order_by("-created_at", "-id")
    )


def experiment_detail(code: str) -> Experiment | None:
    """An experiment with its batches, factors, arms (each with its cell count and served
    versions), in a fixed number of queries."""
    # Ordered here: Django leaves Meta.ordering out of a query with GROUP BY.
    arms = (
        Arm.objects.annotate(cell_count=Count("assignments"))
        .order_by("position")
        .prefetch_related(
            Prefetch(
                "recipe_versions",
                queryset=ArmRecipeVersion.objects.select_related("version__recipe"),
            )
        )
    )
    return (
        Experiment.objects.select_related("created_by", "deviation_approved_by", "concluded_by")
        .prefetch_related("batches", "factors", Prefetch("arms", queryset=arms))
        .filter(code=code)
        .first()
    )


@dataclass
class CellOutcome:
    serial: str
    batch: str
    position: int
    arm: str
    value: float | None
    # False when the cell ran a parameter factor's step on other setpoints than its arm's (the
    # station ignored the version served): it is left out of the comparison.
    on_arm: bool = True


GRADE_PREFIX = "grade:"  # a feature "grade:A": 1 for a cell graded A, 0 for one graded otherwise


def outcomes(experiment: Experiment, feature: str) -> list[CellOutcome]:
    """Every assigned cell with its arm and its last measured `feature` (None if not yet). A
    feature `grade:<G>` is 1 for a cell graded G and 0 for one graded otherwise, so an arm's mean
    is its share of G among its graded cells."""
    assigned = list(
        ArmAssignment.objects.filter(experiment=experiment)
        .values_list(
            "cell_id",
            "cell__serial",
            "cell__batch__code",
            "cell__position",
            "arm__code",
            "cell__grade",
        )
        .order_by("cell__batch__code", "cell__position")
    )
    if feature.startswith(GRADE_PREFIX):
        wanted = feature.removeprefix(GRADE_PREFIX)
        values = {a[0]: float(a[5] == wanted) for a in assigned if a[5]}
    else:
        values = dict(
            Measurement.objects.filter(name=feature, run__cell_id__in=[a[0] for a in assigned])
            .order_by("run__finished_at", "run_id")
            .values_list("run__cell_id", "value")
        )
    off_arm = _off_arm_cells(experiment, [a[0] for a in assigned])
    return [
        CellOutcome(serial, batch, position, arm, values.get(cell_id), cell_id not in off_arm)
        for cell_id, serial, batch, position, arm, _grade in assigned
    ]


def _off_arm_cells(experiment: Experiment, cell_ids: list[int]) -> set[int]:
    """The cells with a run at a parameter factor's step under a version not their arm's."""
    kinds = {f.station_kind for f in experiment.factors.all() if f.kind == Factor.Kind.PARAMETER}
    if not kinds or experiment.status == Experiment.Status.DRAFT:
        return set()
    served: dict[int, set[int]] = {}
    for arm_id, version_id in ArmRecipeVersion.objects.filter(
        arm__experiment=experiment
    ).values_list("arm_id", "version_id"):
        served.setdefault(arm_id, set()).add(version_id)
    arm_of = dict(
        ArmAssignment.objects.filter(experiment=experiment).values_list("cell_id", "arm_id")
    )
    runs = ProcessRun.objects.filter(cell_id__in=cell_ids, station__kind__in=kinds).values_list(
        "cell_id", "recipe_version_id"
    )
    return {
        cell_id
        for cell_id, version_id in runs
        if version_id not in served.get(arm_of[cell_id], set())
    }


def features(experiment: Experiment) -> list[str]:
    """The names of what has been measured on the experiment's cells, then their grades."""
    cells = ArmAssignment.objects.filter(experiment=experiment).values("cell_id")
    measured = (
        Measurement.objects.filter(run__cell_id__in=cells)
        .values_list("name", flat=True)
        .distinct()
        .order_by("name")
    )
    grades = (
        ArmAssignment.objects.filter(experiment=experiment)
        .exclude(cell__grade="")
        .values_list("cell__grade", flat=True)
        .distinct()
        .order_by("cell__grade")
    )
    return [*measured, *(GRADE_PREFIX + grade for grade in grades)]


def experiment_results(experiment: Experiment, feature: str) -> tuple[Results, list[CellOutcome]]:
    """The arms compared on `feature` (experiment_detail's prefetches are used)."""
    cells = outcomes(experiment, feature)
    by_arm: dict[str, list[float]] = {}
    for cell in cells:
        if cell.value is not None and cell.on_arm:
            by_arm.setdefault(cell.arm, []).append(cell.value)
    return (
        results(
            [(arm.code, arm.levels) for arm in experiment.arms.all()],
            by_arm,
            [(f.name, f.levels) for f in experiment.factors.all()],
            experiment.design == Experiment.Design.FACTORIAL,
        ),
        cells,
    )


def arm_lots(cell_id: int, station_kind: str) -> dict[str, tuple[str, str]]:
    """Role -> (lot code, "experiment/arm") of the material lots a cell's arm in a running
    experiment is to be made with at a step; empty for a cell in no such arm."""
    rows = ArmAssignment.objects.filter(
        cell_id=cell_id,
        experiment__status=Experiment.Status.RUNNING,
        experiment__factors__kind=Factor.Kind.MATERIAL,
        experiment__factors__station_kind=station_kind,
    ).values_list("experiment__code", "arm__code", "arm__levels", "experiment__factors__name")
    return {role: (levels[role], f"{experiment}/{arm}") for experiment, arm, levels, role in rows}
