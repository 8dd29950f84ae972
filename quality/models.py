"""Quality's own records: grading rule sets per cell design and the grade of every grading."""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q

from batches.models import Cell
from lines.models import CellDesign, RecipeVersion


class GradingRuleSet(models.Model):
    """A versioned set of grading criteria for one cell design; released versions never change."""

    # Versioned exactly like recipes: draft -> released -> superseded.
    Status = RecipeVersion.Status
    TRANSITIONS = RecipeVersion.TRANSITIONS

    design = models.ForeignKey(
        CellDesign, on_delete=models.PROTECT, related_name="grading_rule_sets"
    )
    version = models.PositiveIntegerField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    released_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "batches_gradingruleset"  # the table and constraint names it was created with
        ordering = ["design", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["design", "version"], name="batches_gradingruleset_number_per_design"
            ),
            models.UniqueConstraint(
                fields=["design"],
                condition=Q(status="released"),
                name="batches_gradingruleset_one_released",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.design.code} grading v{self.version}"


class GradeCriterion(models.Model):
    """One condition of a grade: a measurement of the cell within inclusive limits."""

    rule_set = models.ForeignKey(GradingRuleSet, on_delete=models.CASCADE, related_name="criteria")
    grade = models.CharField(max_length=10)
    rank = models.PositiveSmallIntegerField(help_text="1 is the best grade; tried in rank order")
    parameter = models.SlugField(max_length=60)
    min = models.FloatField(null=True, blank=True)
    max = models.FloatField(null=True, blank=True)

    class Meta:
        db_table = "batches_gradecriterion"
        ordering = ["rule_set", "rank", "parameter"]
        constraints = [
            models.UniqueConstraint(
                fields=["rule_set", "grade", "parameter"],
                name="batches_gradecriterion_once_per_grade",
            ),
            models.CheckConstraint(
                condition=Q(min__isnull=True) | Q(max__isnull=True) | Q(min__lte=F("max")),
                name="batches_gradecriterion_min_le_max",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.grade}: {self.min} <= {self.parameter} <= {self.max}"

    def met_by(self, value: float | None) -> bool:
        return (
            value is not None
            and (self.min is None or value >= self.min)
            and (self.max is None or value <= self.max)
        )


class CellGrade(models.Model):
    """Every grading of a cell with the rule-set version that graded it; the newest is the cell's grade."""

    cell = models.ForeignKey(Cell, on_delete=models.PROTECT, related_name="gradings")
    rule_set = models.ForeignKey(GradingRuleSet, on_delete=models.PROTECT, related_name="gradings")
    grade = models.CharField(max_length=10)
    reasons = models.JSONField(
        default=list, blank=True, help_text="Why each better grade was missed"
    )
    graded_at = models.DateTimeField(auto_now_add=True)
    graded_by = models.CharField(max_length=150)

    class Meta:
        db_table = "batches_cellgrade"
        ordering = ["cell", "-graded_at", "-id"]

    def __str__(self) -> str:
        return f"{self.cell_id} {self.grade} ({self.rule_set})"


# Non-conformance reports live in their own module; imported here so that Django finds them.
from quality.experiments.models import (  # noqa: E402, F401  (experiment lots)
    Arm,
    ArmAssignment,
    ArmRecipeVersion,
    Experiment,
    Factor,
)
from quality.nonconformance_models import NonConformance, NonConformanceAction  # noqa: E402, F401
from quality.spc.models import SpcBaseline, SpcSetting  # noqa: E402,F401  (SPC's own records)
