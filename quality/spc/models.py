"""SPC's own records: frozen control limits (phase II baselines) and per-parameter settings.

Both are append-only, versioned like recipes: a change is a new version; the latest version of a
parameter is the one in force, and nothing written is ever updated. So the runtime database role
needs only SELECT and INSERT on them (core.db_roles), and every chart a hold was judged against
can be read again as it was.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from lines.models import Line, StationKind


class SpcBaseline(models.Model):
    """A version of the control limits of one parameter at one step of a line, for one chart
    type, frozen from the points of a chosen period (phase II). A withdrawn version puts the
    parameter back on limits from the selected points (phase I)."""

    class Chart(models.TextChoices):
        IMR = "imr", _("Individuals and moving range")
        XBAR_R = "xbar_r", _("X-bar and range")
        XBAR_S = "xbar_s", _("X-bar and standard deviation")

    line = models.ForeignKey(Line, on_delete=models.PROTECT, related_name="+")
    step = models.CharField(max_length=20, choices=StationKind.choices)
    parameter = models.SlugField(max_length=60)
    chart = models.CharField(max_length=10, choices=Chart.choices)
    version = models.PositiveIntegerField()
    withdrawn = models.BooleanField(default=False)
    # What the limits are computed from: center +- 3 sigma_within (over sqrt(n) by subgroup).
    center = models.FloatField(null=True, blank=True)
    sigma_within = models.FloatField(null=True, blank=True)
    subgroup = models.CharField(
        max_length=20, blank=True, help_text="How the period's points were grouped (X-bar)"
    )
    n = models.PositiveIntegerField(default=0, help_text="Values it was computed from")
    since = models.DateTimeField(null=True, blank=True)
    until = models.DateTimeField(null=True, blank=True)
    note = models.TextField()
    frozen_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    frozen_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["line", "step", "parameter", "chart", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["line", "step", "parameter", "chart", "version"],
                name="%(app_label)s_%(class)s_version_once",
            ),
            models.CheckConstraint(
                condition=Q(withdrawn=True)
                | Q(center__isnull=False, sigma_within__gt=0, since__lt=F("until")),
                name="%(app_label)s_%(class)s_limits_and_period",
            ),
        ]

    def __str__(self) -> str:
        return (
            f"{self.parameter} at {self.step} on line {self.line_id} ({self.chart}) v{self.version}"
        )


class SpcSetting(models.Model):
    """A version of the SPC settings of one parameter at one step of a line: which of Nelson's
    rules are judged, and whether a signal holds the cell (the spc_signal hold rule) or flags."""

    line = models.ForeignKey(Line, on_delete=models.PROTECT, related_name="+")
    step = models.CharField(max_length=20, choices=StationKind.choices)
    parameter = models.SlugField(max_length=60)
    version = models.PositiveIntegerField()
    rules = ArrayField(models.PositiveSmallIntegerField(), default=list, blank=True)
    hold = models.BooleanField(default=False)
    note = models.TextField()
    set_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    set_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["line", "step", "parameter", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["line", "step", "parameter", "version"],
                name="%(app_label)s_%(class)s_version_once",
            ),
            models.CheckConstraint(
                condition=Q(rules__contained_by=[1, 2, 3, 4, 5, 6, 7, 8]),
                name="%(app_label)s_%(class)s_nelson_rules",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.parameter} at {self.step} on line {self.line_id} v{self.version}"
