"""An experiment's definition (factors, levels, arms), the cells assigned to its arms and the
recipe versions each arm is served."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from batches.models import Batch, Cell
from lines.models import RecipeVersion, StationKind


class Experiment(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        RUNNING = "running", pgettext_lazy("experiment status", "Running")
        CONCLUDED = "concluded", _("Concluded")
        CANCELLED = "cancelled", _("Cancelled")

    TRANSITIONS = {
        Status.DRAFT: {Status.RUNNING, Status.CANCELLED},
        Status.RUNNING: {Status.CONCLUDED, Status.CANCELLED},
        Status.CONCLUDED: set(),
        Status.CANCELLED: set(),
    }

    class Design(models.TextChoices):
        FACTORIAL = "factorial", _("Full factorial")
        ARMS = "arms", _("List of arms")

    class Assignment(models.TextChoices):
        RANDOM = "random", _("Randomised (seeded)")
        BALANCED = "balanced", _("Balanced (round robin over positions)")
        MANUAL = "manual", _("By hand")

    code = models.SlugField(max_length=30, unique=True)
    title = models.CharField(max_length=200)
    objective = models.TextField(blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)
    design = models.CharField(max_length=20, choices=Design.choices)
    assignment = models.CharField(max_length=20, choices=Assignment.choices)
    seed = models.BigIntegerField(null=True, blank=True, help_text="Randomised assignment's seed")
    batches = models.ManyToManyField(Batch, related_name="experiments")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    # Overrides outside the released limits run only under a deviation quality approved.
    deviation_approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    deviation_approved_at = models.DateTimeField(null=True, blank=True)
    deviation_note = models.TextField(blank=True)
    conclusion = models.TextField(blank=True)
    concluded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.code


class Factor(models.Model):
    """What an experiment varies: a recipe parameter of a station kind (numeric levels), or the
    lot of a material role (lot codes as levels)."""

    class Kind(models.TextChoices):
        PARAMETER = "parameter", _("Recipe parameter")
        MATERIAL = "material", _("Material lot")

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="factors")
    position = models.PositiveSmallIntegerField()
    kind = models.CharField(max_length=20, choices=Kind.choices)
    name = models.SlugField(max_length=60, help_text="The parameter's name, or the material role")
    station_kind = models.CharField(max_length=20, choices=StationKind.choices)
    levels = models.JSONField(help_text="Numbers for a parameter, lot codes for a material")

    class Meta:
        ordering = ["experiment", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["experiment", "name"], name="quality_factor_name_per_experiment"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.station_kind}.{self.name}"


class Arm(models.Model):
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="arms")
    position = models.PositiveSmallIntegerField()
    code = models.SlugField(max_length=30)
    levels = models.JSONField(help_text="factor name -> its level in this arm")

    class Meta:
        ordering = ["experiment", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["experiment", "code"], name="quality_arm_code_per_experiment"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.experiment_id}/{self.code}"


class ArmRecipeVersion(models.Model):
    """The frozen version an arm is served at one station kind (derived when it starts)."""

    arm = models.ForeignKey(Arm, on_delete=models.CASCADE, related_name="recipe_versions")
    version = models.ForeignKey(RecipeVersion, on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["arm", "version"], name="quality_armrecipe_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.arm_id}: {self.version_id}"


class ArmAssignment(models.Model):
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="assignments")
    arm = models.ForeignKey(Arm, on_delete=models.CASCADE, related_name="assignments")
    cell = models.ForeignKey(Cell, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["arm", "cell"]
        constraints = [
            models.UniqueConstraint(
                fields=["experiment", "cell"], name="quality_assignment_one_arm_per_cell"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.cell_id} -> {self.arm_id}"
