"""Quality's own records: grading rule sets per cell design and the grade of every grading."""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q

from batches.models import Batch, Cell
from lines.models import CellDesign, Line, RecipeVersion


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


class BatchYield(models.Model):
    """One figure of a batch's yield (quality.yields) as last computed: a step's, a local day's
    or its cells' in all, over its results at the stations of one line or of any line (NULL).

    Written only by the database's function quality_batch_yield (migration 0006), which computes
    the figures itself; the runtime role may only read the table. Every row of a batch goes in
    the transaction that changes what they were computed from (its cell steps, its runs, a
    cell's status, its design; triggers of the same migration), and a change that may move any
    batch's figures (a station to another line, a route step's kind) moves YieldEpoch on, which
    every older row falls behind. Each batch with figures stored has its cells' row of any line,
    even with no cell: rows missing for a line mean no cell of the batch was counted there.
    """

    class Kind(models.TextChoices):
        STEP = "step", "Step"
        DAY = "day", "Day"
        CELLS = "cells", "Cells"

    # No keys: the runtime role, which may not delete these rows, may delete a batch or a line
    # (one with none); rows of a batch gone are never read (yield reads its batches' rows).
    batch = models.ForeignKey(
        Batch, on_delete=models.DO_NOTHING, related_name="+", db_index=False, db_constraint=False
    )
    line = models.ForeignKey(
        Line,
        on_delete=models.DO_NOTHING,
        null=True,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    kind = models.CharField(max_length=5, choices=Kind.choices)
    key = models.CharField(max_length=20, blank=True)  # the step's kind or the ISO day
    zone = models.CharField(max_length=64)  # the time zone the days are local to
    epoch = models.BigIntegerField()
    exact = models.BooleanField()  # its cell steps name its cells' batch and its design
    started = models.PositiveIntegerField()
    first_pass = models.PositiveIntegerField()
    failed = models.PositiveIntegerField()
    reworked = models.PositiveIntegerField()
    scrapped = models.PositiveIntegerField()
    first_at = models.DateTimeField(null=True)  # the earliest counted first result: row order

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["batch", "line", "kind", "key"],
                nulls_distinct=False,
                name="quality_batchyield_once",
            ),
        ]

    def __str__(self) -> str:
        return f"yield of batch {self.batch_id} at line {self.line_id}: {self.kind} {self.key}"


class YieldEpoch(models.Model):
    """One row: moved on by a change that may move any batch's yield figures."""

    value = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"yield epoch {self.value}"


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
