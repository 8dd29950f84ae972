"""Grading: a versioned rule set per cell design turns a cell's measurements into a grade.

Grades are tried best first (rank 1); a cell gets the first grade whose every criterion it meets,
else NG. A criterion on a measurement the cell does not have is not met. Each grading is kept
with the rule-set version that made it; re-grading with another version is an explicit, logged
action.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from audit.services import actor_name, record_event
from batches.models import Batch, Cell
from batches.selectors import latest_measurements
from core.errors import DomainError, check_transition, require_reason
from lines.models import CellDesign
from quality.models import CellGrade, GradeCriterion, GradingRuleSet

NOT_GOOD = "NG"


def grade_for(
    criteria: Iterable[GradeCriterion], values: Mapping[str, float]
) -> tuple[str, list[dict]]:
    """The best grade whose criteria the values all meet, and why each better grade was missed."""
    grades: dict[tuple[int, str], list[GradeCriterion]] = {}
    for criterion in criteria:
        grades.setdefault((criterion.rank, criterion.grade), []).append(criterion)
    reasons = []
    for (_rank, grade), conditions in sorted(grades.items()):
        missed = [c for c in conditions if not c.met_by(values.get(c.parameter))]
        if not missed:
            return grade, reasons
        reasons.append(
            {
                "grade": grade,
                "missed": [
                    {
                        "parameter": c.parameter,
                        "value": values.get(c.parameter),
                        "min": c.min,
                        "max": c.max,
                    }
                    for c in missed
                ],
            }
        )
    return NOT_GOOD, reasons


def released_rule_set(design: CellDesign) -> GradingRuleSet | None:
    return design.grading_rule_sets.filter(status=GradingRuleSet.Status.RELEASED).first()


@transaction.atomic
def create_grading_rule_set(
    design: CellDesign,
    *,
    by: Any,
    grades: Mapping[str, Mapping[str, Mapping[str, float | None]]],
    note: str = "",
) -> GradingRuleSet:
    """A draft rule set; `grades` maps each grade, best first, to {parameter: {"min", "max"}}."""
    last = design.grading_rule_sets.select_for_update().order_by("-version").first()
    rule_set = GradingRuleSet.objects.create(
        design=design, version=last.version + 1 if last else 1, note=note
    )
    GradeCriterion.objects.bulk_create(
        GradeCriterion(
            rule_set=rule_set,
            grade=grade,
            rank=rank,
            parameter=parameter,
            min=limits.get("min"),
            max=limits.get("max"),
        )
        for rank, (grade, parameters) in enumerate(grades.items(), 1)
        for parameter, limits in parameters.items()
    )
    record_event(
        actor=by,
        verb="grading_rule_set_created",
        subject_type="design",
        subject=design.code,
        reason=note,
        data={"version": rule_set.version},
    )
    return rule_set


@transaction.atomic
def release_grading_rule_set(rule_set: GradingRuleSet, *, by: Any) -> GradingRuleSet:
    """Release a draft; the design's previously released set is superseded. Cells graded before
    keep their grade and the version that gave it until someone re-grades them."""
    rule_set = GradingRuleSet.objects.select_for_update().get(pk=rule_set.pk)
    check_transition(GradingRuleSet, rule_set.status, GradingRuleSet.Status.RELEASED)
    GradingRuleSet.objects.filter(
        design_id=rule_set.design_id, status=GradingRuleSet.Status.RELEASED
    ).update(status=GradingRuleSet.Status.SUPERSEDED)
    rule_set.status, rule_set.released_at = GradingRuleSet.Status.RELEASED, timezone.now()
    rule_set.save(update_fields=["status", "released_at"])
    record_event(
        actor=by,
        verb="grading_rule_set_released",
        subject_type="design",
        subject=rule_set.design.code,
        data={"version": rule_set.version},
    )
    return rule_set


def grade_cells(cells: list[Cell], *, rule_set: GradingRuleSet, by: Any) -> list[CellGrade]:
    """Grade cells with one rule set (inside the caller's transaction): a CellGrade row each,
    the cell's current grade, and an event."""
    criteria = list(rule_set.criteria.all())
    values = latest_measurements([c.pk for c in cells], {c.parameter for c in criteria})
    gradings = []
    for cell in cells:
        grade, reasons = grade_for(criteria, values.get(cell.pk, {}))
        gradings.append(
            CellGrade(
                cell=cell, rule_set=rule_set, grade=grade, reasons=reasons, graded_by=actor_name(by)
            )
        )
        previous, cell.grade = cell.grade, grade
        cell.save(update_fields=["grade"])
        record_event(
            actor=by,
            verb="cell_graded",
            subject_type="cell",
            subject=cell.serial,
            data={"grade": grade, "previous": previous, "rule_set": rule_set.version},
        )
    return CellGrade.objects.bulk_create(gradings)


def grade_completed_cell(cell: Cell, *, by: Any) -> CellGrade | None:
    """Grade a cell that has just finished its route with its design's released rule set, if any."""
    rule_set = released_rule_set(cell.batch.design)
    if rule_set is None:
        return None
    return grade_cells([cell], rule_set=rule_set, by=by)[0]


@transaction.atomic
def regrade_batch(
    batch: Batch, *, rule_set: GradingRuleSet, by: Any, reason: str
) -> list[CellGrade]:
    """Re-grade every completed cell of a batch with `rule_set`: an explicit, logged action."""
    require_reason(reason)
    rule_set = GradingRuleSet.objects.get(pk=rule_set.pk)  # its status as it is now
    if rule_set.design_id != batch.design_id:
        raise DomainError(
            "invalid",
            _("Rule set %(rule_set)s is not for design %(design)s.")
            % {"rule_set": rule_set, "design": batch.design.code},
            status=400,
        )
    if rule_set.status == GradingRuleSet.Status.DRAFT:
        raise DomainError(
            "invalid_transition", _("A draft rule set cannot grade cells; release it first.")
        )
    cells = list(
        batch.cells.select_for_update().filter(status=Cell.Status.COMPLETED).order_by("position")
    )
    gradings = grade_cells(cells, rule_set=rule_set, by=by)
    record_event(
        actor=by,
        verb="batch_regraded",
        subject_type="batch",
        subject=batch.code,
        reason=reason,
        data={
            "rule_set": rule_set.version,
            "cells": len(cells),
            "grades": {
                g: sum(1 for x in gradings if x.grade == g) for g in {x.grade for x in gradings}
            },
        },
    )
    return gradings
