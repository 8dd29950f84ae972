"""Battery passport master data and passport exports.

Master data is what a passport needs and the cell's record cannot hold: who makes and who places
the cell on the market, its category, warranty, chemistry, the substances behind each role of the
design's bill of materials, the design's rated technical properties and its carbon footprint. It
is versioned per design like a recipe: a version never changes once released; a new version
supersedes it (a database trigger refuses anything else).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from lines.models import CellDesign


class BatteryCategory(models.TextChoices):
    LMT = "lmt", _("Light means of transport")
    EV = "ev", _("Electric vehicle")
    INDUSTRIAL = "industrial", _("Industrial")
    STATIONARY = "stationary", _("Stationary")


class PassportMasterData(models.Model):
    """One released version of a design's passport master data."""

    class Status(models.TextChoices):
        RELEASED = "released", _("Released")
        SUPERSEDED = "superseded", _("Superseded")

    TRANSITIONS = {Status.RELEASED: {Status.SUPERSEDED}, Status.SUPERSEDED: set()}

    design = models.ForeignKey(
        CellDesign, on_delete=models.PROTECT, related_name="passport_master_data"
    )
    version = models.PositiveIntegerField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.RELEASED)
    note = models.TextField(help_text="What changed and why")
    released_at = models.DateTimeField()
    released_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    # The economic operators (Battery Pass ContactInformation).
    manufacturer_name = models.CharField(max_length=200)
    manufacturer_identifier = models.CharField(max_length=100, help_text="e.g. an LEI or GLN")
    manufacturer_street = models.CharField(max_length=200)
    manufacturer_postal_code = models.CharField(max_length=20)
    manufacturer_country = models.CharField(max_length=60)
    manufacturer_email = models.EmailField(blank=True)
    manufacturer_web = models.URLField(blank=True)
    operator_name = models.CharField(max_length=200)
    operator_identifier = models.CharField(max_length=100)
    operator_street = models.CharField(max_length=200)
    operator_postal_code = models.CharField(max_length=20)
    operator_country = models.CharField(max_length=60)
    operator_email = models.EmailField(blank=True)
    operator_web = models.URLField(blank=True)

    passport_namespace = models.CharField(
        max_length=40, help_text="Lower-case letters and digits: urn:<namespace>:<cell>"
    )
    battery_category = models.CharField(max_length=20, choices=BatteryCategory.choices)
    warranty_period = models.CharField(
        max_length=10, help_text="As the data model 1.2.0 encodes it (xsd:gMonth), e.g. --12"
    )
    chemistry_short_name = models.CharField(max_length=60)
    chemistry_clear_name = models.CharField(max_length=200)
    # [{"role", "name", "cas", "mass_g", "critical_raw_material"}], every role of the design's
    # bill of materials at least once (services check it).
    materials = models.JSONField()
    # [{"role", "name", "cas", "hazard_class", "concentration_pct", "impacts": [..]}]
    hazardous_substances = models.JSONField(default=list)

    # The design's rated technical properties the record does not hold.
    rated_maximum_power_w = models.FloatField()
    power_capability_ratio = models.FloatField()
    original_power_capability = models.JSONField(help_text='[{"soc_pct", "power_w"}]')
    expected_cycles = models.PositiveIntegerField()
    expected_lifetime_years = models.PositiveSmallIntegerField()
    c_rate_life_cycle_test = models.FloatField()
    lifetime_reference_test = models.URLField()
    capacity_threshold_for_exhaustion_pct = models.FloatField()
    roundtrip_efficiency_pct = models.FloatField()
    roundtrip_efficiency_50pct_cycle_life_pct = models.FloatField()
    temperature_range_idle_state_c = models.FloatField(
        help_text="Upper idle temperature the cell withstands, -20..60 degC"
    )
    shipping_state_of_charge_pct = models.FloatField()
    # A cell's measured self-discharge is an OCV drop (mV/day); the design's OCV slope at the
    # aging state of charge turns it into the data model's % of capacity.
    ocv_slope_mv_per_pct_soc = models.FloatField()
    # Declared values, quoted only for a cell whose route measures none of its own.
    rated_internal_resistance_mohm = models.FloatField()
    rated_self_discharge_pct_per_month = models.FloatField()

    carbon_footprint_kg_per_kwh = models.FloatField(help_text="kg CO2e per kWh of rated energy")
    carbon_footprint_stages = models.JSONField(help_text='{"MainProduction": kg CO2e/kWh, ...}')
    carbon_footprint_class = models.CharField(max_length=20)
    carbon_footprint_study = models.URLField()

    class Meta:
        ordering = ["design", "-version"]
        verbose_name = "passport master data"
        verbose_name_plural = "passport master data"
        constraints = [
            models.UniqueConstraint(
                fields=["design", "version"], name="%(app_label)s_%(class)s_number_per_design"
            ),
            models.UniqueConstraint(
                fields=["design"],
                condition=Q(status="released"),
                name="%(app_label)s_%(class)s_one_released_per_design",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.design.code} passport master data v{self.version}"


class PassportExport(models.Model):
    """A batch's passports as a ZIP, one JSON per good cell, built by a worker."""

    class Status(models.TextChoices):
        REQUESTED = "requested", _("Requested")
        READY = "ready", _("Ready")
        FAILED = "failed", pgettext_lazy("passport export", "Failed")

    batch = models.ForeignKey(
        "batches.Batch", on_delete=models.PROTECT, related_name="passport_exports"
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.REQUESTED)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    requested_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    file = models.CharField(max_length=200, blank=True, help_text="Path under MEDIA_ROOT")
    cells = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]

    def __str__(self) -> str:
        return f"passports of {self.batch_id} ({self.status})"


class BatchFigures(models.Model):
    """A batch's economics and energy spreads as last computed (analytics.energy), so the home,
    line and batch pages read one row instead of every cell's measurements.

    A row is only ever current: the database deletes it in the transaction that changes what it
    was computed from (a result, a cell's status or grade, a consumption, a hold over its cells;
    triggers of migration 0003), and a change of a lot's unit cost or a line's process cost moves
    FiguresEpoch on, which every older row falls behind. See analytics.energy for how a row is
    written without racing those changes.
    """

    batch = models.OneToOneField(
        "batches.Batch", primary_key=True, on_delete=models.CASCADE, related_name="+"
    )
    epoch = models.BigIntegerField()
    computed_at = models.DateTimeField(auto_now_add=True)
    material_cost = models.DecimalField(max_digits=20, decimal_places=2)
    process_cost = models.DecimalField(max_digits=20, decimal_places=2)
    cells_started = models.PositiveIntegerField()
    good_cells = models.PositiveIntegerField()
    good_energy_wh = models.FloatField()
    rated_cells = models.PositiveIntegerField()
    energy_spreads = models.JSONField(default=list)

    def __str__(self) -> str:
        return f"figures of batch {self.batch_id}"


class FiguresEpoch(models.Model):
    """One row: moved on by a change of a cost every batch's figures may depend on."""

    value = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"figures epoch {self.value}"
