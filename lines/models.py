"""Where and how cells are made: lines, stations, equipment, routes, the cell designs, and the
recipes written for them with their versions."""

from __future__ import annotations

import functools
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class StationKind(models.TextChoices):
    STACKING = "stacking", _("Stacking")
    PRESSING = "pressing", _("Pressing")
    FORMATION = "formation", _("Formation")
    AGING = "aging", _("Aging / OCV")
    GRADING = "grading", _("Grading")


class Line(models.Model):
    """A production line at one site (the prototype line, the Yokohama pilot line)."""

    code = models.SlugField(max_length=30, unique=True)
    name = models.CharField(max_length=100)
    site = models.CharField(max_length=200)
    # The site's postal address, for the battery passport's manufacturing place.
    site_street = models.CharField(max_length=200, blank=True)
    site_postal_code = models.CharField(max_length=20, blank=True)
    site_country = models.CharField(max_length=60, blank=True)
    # Process cost (labour, energy, depreciation) per cell started, for the cost per kWh.
    process_cost_per_cell = models.DecimalField(
        max_digits=10, decimal_places=4, default=Decimal("0")
    )
    currency = models.CharField(max_length=3, default="USD")

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=Q(process_cost_per_cell__gte=0),
                name="%(app_label)s_%(class)s_process_cost_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Station(models.Model):
    """One station of a line; its code identifies the equipment on the station API."""

    class State(models.TextChoices):
        RUNNING = "running", _("Running")
        IDLE = "idle", _("Idle")
        DOWN = "down", _("Down")
        MAINTENANCE = "maintenance", _("Maintenance")

    line = models.ForeignKey(Line, on_delete=models.PROTECT, related_name="stations")
    code = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=20, choices=StationKind.choices)
    state = models.CharField(max_length=20, choices=State.choices, default=State.IDLE)
    state_since = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["line", "code"]

    def __str__(self) -> str:
        return self.code


class StationStateChange(models.Model):
    """The history of a station's state, for availability (OEE) and the line view."""

    station = models.ForeignKey(Station, on_delete=models.CASCADE, related_name="state_changes")
    state = models.CharField(max_length=20, choices=Station.State.choices)
    reason = models.CharField(max_length=200, blank=True)
    # The catalogue's reason when the station sent one of its codes; engineers correct it later
    # through StopReasonCorrection, this row staying as it was sent.
    downtime_reason = models.ForeignKey(
        "DowntimeReason", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    occurred_at = models.DateTimeField()
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [
            # Availability of one station over a window: WHERE station_id=.. ORDER BY occurred_at
            models.Index(fields=["station", "occurred_at"], name="lines_statechange_station_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.station} {self.state} at {self.occurred_at}"


class Equipment(models.Model):
    """A registered press vessel, formation fixture or channel, cycler channel or other tool at a
    station: results name it, and using it out of calibration, locked out or retired holds the
    cell (quality.rules.equipment_unusable)."""

    class Kind(models.TextChoices):
        PRESS_VESSEL = "press_vessel", _("Press vessel")
        FORMATION_FIXTURE = "formation_fixture", _("Formation fixture")
        FIXTURE_CHANNEL = "fixture_channel", _("Fixture channel")
        CYCLER = "cycler", _("Cycler")
        CYCLER_CHANNEL = "cycler_channel", _("Cycler channel")
        STACKER = "stacker", _("Stacker")
        OTHER = "other", _("Other")

    class Status(models.TextChoices):
        IN_SERVICE = "in_service", _("In service")
        LOCKED_OUT = "locked_out", _("Locked out")
        RETIRED = "retired", _("Retired")

    # The moves lines.equipment makes; a retired item stays retired.
    TRANSITIONS = {
        Status.IN_SERVICE: {Status.LOCKED_OUT, Status.RETIRED},
        Status.LOCKED_OUT: {Status.IN_SERVICE, Status.RETIRED},
        Status.RETIRED: set(),
    }

    station = models.ForeignKey(Station, on_delete=models.PROTECT, related_name="equipment")
    code = models.SlugField(max_length=40, unique=True)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    channels = models.PositiveSmallIntegerField(default=1)
    active = models.BooleanField(default=True)
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="children",
        help_text="The fixture or cycler a channel belongs to",
    )
    calibration_due = models.DateField(
        null=True, blank=True, help_text="Empty: the item needs no calibration"
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.IN_SERVICE)

    class Meta:
        ordering = ["station", "code"]
        verbose_name_plural = "equipment"
        constraints = [
            models.CheckConstraint(
                condition=Q(channels__gte=1), name="%(app_label)s_%(class)s_channels_positive"
            ),
        ]

    def __str__(self) -> str:
        return self.code

    def unusable_reason(self, at: datetime) -> str:
        """Why this item could not be used at `at` (locked out, retired, calibration overdue),
        or "" when it could. Reads status_changes and calibrations, prefetched by callers that
        ask for many runs."""
        status = Equipment.Status.IN_SERVICE
        for change in sorted(self.status_changes.all(), key=lambda c: (c.at, c.pk)):
            if change.at <= at:
                status = change.status
        if status != Equipment.Status.IN_SERVICE:
            return f"{self.code} was {Equipment.Status(status).label.lower()}"
        due = self.calibration_due
        calibrations = sorted(self.calibrations.all(), key=lambda c: (c.calibrated_at, c.pk))
        if calibrations:
            earlier = [c for c in calibrations if c.calibrated_at <= at]
            # Used before its first recorded calibration: due as registered, else never calibrated.
            due = earlier[-1].due if earlier else self.calibration_due
        local_day = at.astimezone(_plant_zone()).date()
        if due is not None and due < local_day:
            return f"{self.code} was out of calibration (due {due:%Y-%m-%d})"
        # A channel of a fixture or cycler that could not be used could not be used either.
        return self.parent.unusable_reason(at) if self.parent_id is not None else ""


def _plant_zone():
    from zoneinfo import ZoneInfo

    return ZoneInfo(settings.TIME_ZONE)


class Route(models.Model):
    """The ordered steps that cells of a batch take on a line."""

    line = models.ForeignKey(Line, on_delete=models.PROTECT, related_name="routes")
    code = models.SlugField(max_length=40)
    name = models.CharField(max_length=100)

    class Meta:
        ordering = ["line", "code"]
        constraints = [
            models.UniqueConstraint(
                fields=["line", "code"], name="%(app_label)s_%(class)s_code_per_line"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.line.code}/{self.code}"

    def step_kinds(self) -> list[str]:
        return [step.station_kind for step in self.steps.all()]


class RouteStep(models.Model):
    """One step of a route: the kind of station a cell visits at this position."""

    route = models.ForeignKey(Route, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField()
    station_kind = models.CharField(max_length=20, choices=StationKind.choices)

    class Meta:
        ordering = ["route", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["route", "position"], name="%(app_label)s_%(class)s_position_per_route"
            ),
            models.UniqueConstraint(
                fields=["route", "station_kind"], name="%(app_label)s_%(class)s_kind_once_per_route"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.route} #{self.position} {self.station_kind}"


class CellDesign(models.Model):
    """A cell design: what a batch makes, with the nominal figures its recipes are written for."""

    code = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=100)
    nominal_capacity_ah = models.FloatField()
    nominal_voltage_v = models.FloatField()
    layer_count = models.PositiveSmallIntegerField()
    target_mass_g = models.FloatField()
    length_mm = models.FloatField()
    width_mm = models.FloatField()
    thickness_mm = models.FloatField()
    voltage_min_v = models.FloatField(help_text="Lower end of the formation voltage window")
    voltage_max_v = models.FloatField(help_text="Upper end of the formation voltage window")

    class Meta:
        db_table = "batches_celldesign"  # the table and constraint names it was created with
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=Q(nominal_capacity_ah__gt=0)
                & Q(nominal_voltage_v__gt=0)
                & Q(layer_count__gt=0)
                & Q(target_mass_g__gt=0)
                & Q(length_mm__gt=0)
                & Q(width_mm__gt=0)
                & Q(thickness_mm__gt=0),
                name="batches_celldesign_figures_positive",
            ),
            models.CheckConstraint(
                condition=Q(voltage_min_v__lt=models.F("voltage_max_v")),
                name="batches_celldesign_voltage_window_ordered",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def nominal_energy_wh(self) -> float:
        return self.nominal_capacity_ah * self.nominal_voltage_v

    @property
    def volume_l(self) -> float:
        return self.length_mm * self.width_mm * self.thickness_mm / 1e6


class Recipe(models.Model):
    """The process recipe of one station kind on one line, for one cell design or, without a
    design, the line's default for every design that has none of its own; its versions carry
    the limits."""

    line = models.ForeignKey(Line, on_delete=models.PROTECT, related_name="recipes")
    station_kind = models.CharField(max_length=20, choices=StationKind.choices)
    design = models.ForeignKey(
        CellDesign,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="recipes",
        help_text="The design it is written for; empty: the line's default",
    )
    name = models.CharField(max_length=100)

    class Meta:
        ordering = ["line", "station_kind", "design_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["line", "station_kind"],
                condition=Q(design__isnull=True),
                name="%(app_label)s_%(class)s_one_default_per_station_kind",
            ),
            models.UniqueConstraint(
                fields=["line", "station_kind", "design"],
                condition=Q(design__isnull=False),
                name="%(app_label)s_%(class)s_one_per_station_kind_and_design",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class RecipeVersionQuerySet(models.QuerySet):
    def released(self) -> RecipeVersionQuerySet:
        return self.filter(status=RecipeVersion.Status.RELEASED)


class RecipeVersion(models.Model):
    """One version of a recipe; once released it never changes (the database enforces it)."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        RELEASED = "released", _("Released")
        SUPERSEDED = "superseded", _("Superseded")
        # An experiment arm's setpoints: frozen like a released version, served only to the
        # cells assigned to the arm (batches.recipe_overrides), never in force for the line.
        EXPERIMENT = "experiment", _("Experiment arm")

    # The only moves a version makes; services check them, the database trigger backs them up.
    TRANSITIONS = {
        Status.DRAFT: {Status.RELEASED, Status.EXPERIMENT},
        Status.RELEASED: {Status.SUPERSEDED},
        Status.SUPERSEDED: set(),
        Status.EXPERIMENT: set(),
    }

    recipe = models.ForeignKey(Recipe, on_delete=models.PROTECT, related_name="versions")
    version = models.PositiveIntegerField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)
    note = models.TextField(blank=True, help_text="What changed and why")
    created_at = models.DateTimeField(auto_now_add=True)
    released_at = models.DateTimeField(null=True, blank=True)
    released_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    derived_from = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="An experiment arm's version: the released version its overrides change",
    )

    objects = RecipeVersionQuerySet.as_manager()

    class Meta:
        ordering = ["recipe", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["recipe", "version"], name="%(app_label)s_%(class)s_number_per_recipe"
            ),
            # At most one released (active) version per recipe.
            models.UniqueConstraint(
                fields=["recipe"],
                condition=Q(status="released"),
                name="%(app_label)s_%(class)s_one_released_per_recipe",
            ),
            models.CheckConstraint(
                condition=Q(status="draft") | Q(released_at__isnull=False),
                name="%(app_label)s_%(class)s_released_has_time",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.recipe.name} v{self.version}"

    def parameters_dict(self) -> dict[str, dict]:
        return {name: p.as_limits() for name, p in self.parameters_by_name.items()}

    @cached_property
    def parameters_by_name(self) -> dict[str, RecipeParameter]:
        """The parameters by name. A version out of draft never changes (a database trigger
        refuses it), so its parameters are read once per process and shared: workers judge
        every result against them and ask for the active version once per task."""
        if self.status == self.Status.DRAFT:
            return {p.name: p for p in self.parameters.all()}
        return _frozen_parameters(self.pk, self.released_at)


class RecipeParameter(models.Model):
    """A parameter of a recipe version with its unit, target and inclusive limits."""

    version = models.ForeignKey(RecipeVersion, on_delete=models.CASCADE, related_name="parameters")
    name = models.SlugField(max_length=60)
    unit = models.CharField(max_length=20, blank=True)
    target = models.FloatField(null=True, blank=True)
    min = models.FloatField(null=True, blank=True)
    max = models.FloatField(null=True, blank=True)
    # A required parameter missing from a result is a violation; optional ones are judged if sent.
    required = models.BooleanField(default=True)

    class Meta:
        ordering = ["version", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["version", "name"], name="%(app_label)s_%(class)s_name_per_version"
            ),
            models.CheckConstraint(
                condition=Q(min__isnull=True) | Q(max__isnull=True) | Q(min__lte=F("max")),
                name="%(app_label)s_%(class)s_min_le_max",
            ),
            models.CheckConstraint(
                condition=Q(min__isnull=True) | Q(target__isnull=True) | Q(min__lte=F("target")),
                name="%(app_label)s_%(class)s_min_le_target",
            ),
            models.CheckConstraint(
                condition=Q(max__isnull=True) | Q(target__isnull=True) | Q(target__lte=F("max")),
                name="%(app_label)s_%(class)s_target_le_max",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} [{self.min}, {self.max}] {self.unit}"

    def as_limits(self) -> dict:
        return {"unit": self.unit, "target": self.target, "min": self.min, "max": self.max}

    def in_spec(self, value: float) -> bool | None:
        """Inclusive limits; None when the parameter has no limit (recorded, not judged)."""
        if self.min is None and self.max is None:
            return None
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)


@functools.lru_cache(maxsize=1024)
def _frozen_parameters(version_id: int, released_at: datetime) -> dict[str, RecipeParameter]:
    # Keyed by the release time too: an id used again once the tables were emptied (a demo
    # reset) names another version, released at another moment.
    return {p.name: p for p in RecipeParameter.objects.filter(version_id=version_id)}


# ---------------------------------------------------------------- dry-room zones
# A zone's air is judged by environment/ from its sensors' readings; the zones and the excursions
# found in them live here, beside the stations, so that quality's hold rule can read them.

# The quantities a zone's sensors report, with the bounds a limit may set on each.
ZONE_QUANTITIES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "dew_point_c": ("Dew point", "°C", ("max",)),
    "temperature_c": ("Temperature", "°C", ("min", "max")),
    "h2s_ppm": ("H2S", "ppm", ("max",)),
}


def zone_limit_problems(limits: object) -> dict[str, str]:
    """What is wrong with a zone's limits (quantity -> {"min"/"max": number}); empty when right."""
    if not isinstance(limits, dict):
        return {"limits": "An object of quantity -> {min, max}."}
    problems = {}
    for quantity, bounds in limits.items():
        if quantity not in ZONE_QUANTITIES:
            problems[quantity] = f"Not a zone quantity (one of {', '.join(ZONE_QUANTITIES)})."
            continue
        allowed = ZONE_QUANTITIES[quantity][2]
        if not isinstance(bounds, dict) or not bounds or set(bounds) - set(allowed):
            problems[quantity] = f"An object with {' and/or '.join(allowed)}."
        elif any(isinstance(v, bool) or not isinstance(v, int | float) for v in bounds.values()):
            problems[quantity] = "Limits are numbers."
        elif bounds.get("min", float("-inf")) > bounds.get("max", float("inf")):
            problems[quantity] = "min is above max."
    return problems


class Zone(models.Model):
    """A controlled room of a line (the stacking dry room): the stations in it, the limits its air
    is held to and how long a crossing is tolerated before it is an excursion."""

    line = models.ForeignKey(Line, on_delete=models.PROTECT, related_name="zones")
    code = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=100)
    stations = models.ManyToManyField(Station, related_name="zones", blank=True)
    limits = models.JSONField(
        default=dict,
        help_text='Per quantity, e.g. {"dew_point_c": {"max": -40}, "h2s_ppm": {"max": 1}}',
    )
    tolerated_s = models.PositiveIntegerField(
        default=60, help_text="How long a limit may be crossed before it is an excursion (s)"
    )
    exposure_limits_h = models.JSONField(
        default=dict,
        blank=True,
        help_text='Longest time a lot may stay open in the zone, per material role (hours), e.g. {"electrolyte": 8}',
    )

    class Meta:
        ordering = ["line", "code"]
        constraints = [
            models.CheckConstraint(
                condition=Q(tolerated_s__gte=1), name="%(app_label)s_%(class)s_tolerated_positive"
            ),
        ]

    def __str__(self) -> str:
        return self.code

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        if problems := zone_limit_problems(self.limits):
            raise ValidationError({"limits": "; ".join(f"{k}: {v}" for k, v in problems.items())})
        bad_roles = [
            role
            for role, hours in (self.exposure_limits_h or {}).items()
            if isinstance(hours, bool) or not isinstance(hours, int | float) or hours <= 0
        ]
        if not isinstance(self.exposure_limits_h, dict) or bad_roles:
            raise ValidationError({"exposure_limits_h": "Role -> a positive number of hours."})


class Excursion(models.Model):
    """A maximal run of one sensor's readings beyond one of its zone's limits, by the readings' own
    time. It counts (and holds) once it has lasted longer than the zone tolerates."""

    zone = models.ForeignKey(Zone, on_delete=models.PROTECT, related_name="excursions")
    sensor = models.CharField(max_length=60)
    quantity = models.CharField(max_length=20)
    bound = models.CharField(max_length=3, help_text="The limit crossed: min or max")
    limit = models.FloatField()
    started_at = models.DateTimeField(help_text="The first reading beyond the limit")
    last_beyond_at = models.DateTimeField(help_text="The last reading beyond the limit")
    ended_at = models.DateTimeField(
        null=True, blank=True, help_text="The first reading back within it; empty while open"
    )
    peak = models.FloatField(help_text="The reading furthest beyond the limit")
    counted_at = models.DateTimeField(
        null=True, blank=True, help_text="When it was found to last longer than tolerated"
    )

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(last_beyond_at__gte=F("started_at"))
                & (Q(ended_at__isnull=True) | Q(ended_at__gt=F("last_beyond_at"))),
                name="%(app_label)s_%(class)s_in_time_order",
            ),
        ]
        indexes = [
            # A zone's excursions over a window (zone page; judging a late reading's span).
            models.Index(fields=["zone", "started_at"], name="lines_excursion_zone_time_idx"),
        ]

    def __str__(self) -> str:
        return self.code

    @property
    def code(self) -> str:
        """What its hold is called: the zone and the excursion's number."""
        return f"{self.zone.code}-X{self.pk}"

    @property
    def duration_s(self) -> float:
        return ((self.ended_at or self.last_beyond_at) - self.started_at).total_seconds()

    @property
    def unit(self) -> str:
        return ZONE_QUANTITIES[self.quantity][1]

    @property
    def label(self) -> str:
        return ZONE_QUANTITIES[self.quantity][0]


# ---------------------------------------------------------------- line performance
# Shift calendars, downtime reasons, ideal cycle times and the equipment registry's history.


class ShiftCalendar(models.Model):
    """A line's own shift calendar. A line without one works to DEFAULT_CALENDAR
    (lines.calendar), so every line has a calendar without anyone writing rows for it."""

    line = models.OneToOneField(Line, on_delete=models.CASCADE, related_name="shift_calendar")
    time_zone = models.CharField(max_length=60, default="Asia/Tokyo")
    public_holidays = models.BooleanField(
        default=True, help_text="Japan's public holidays (the holidays package) are days off"
    )
    year_end_off = models.BooleanField(default=True, help_text="29 Dec to 3 Jan are days off")

    def __str__(self) -> str:
        return f"{self.line.code} calendar ({self.time_zone})"


class Shift(models.Model):
    """A shift on one weekday, from `start` to `end` in the calendar's zone; an end at or before
    the start is on the next day (a night shift)."""

    calendar = models.ForeignKey(ShiftCalendar, on_delete=models.CASCADE, related_name="shifts")
    name = models.CharField(max_length=40)
    weekday = models.PositiveSmallIntegerField(help_text="0 Monday … 6 Sunday")
    start = models.TimeField()
    end = models.TimeField()

    class Meta:
        ordering = ["calendar", "weekday", "start"]
        constraints = [
            models.CheckConstraint(
                condition=Q(weekday__lte=6), name="%(app_label)s_%(class)s_weekday_0_to_6"
            ),
            models.UniqueConstraint(
                fields=["calendar", "weekday", "start"],
                name="%(app_label)s_%(class)s_one_per_start",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} {self.weekday} {self.start}-{self.end}"


class ShiftBreak(models.Model):
    """A break within a shift (times of day; after midnight in a night shift falls on its next day)."""

    shift = models.ForeignKey(Shift, on_delete=models.CASCADE, related_name="breaks")
    start = models.TimeField()
    end = models.TimeField()

    class Meta:
        ordering = ["shift", "start"]

    def __str__(self) -> str:
        return f"break {self.start}-{self.end}"


class DayOff(models.Model):
    """A day a line does not work besides the calendar's holidays (a plant shutdown)."""

    line = models.ForeignKey(Line, on_delete=models.CASCADE, related_name="days_off")
    date = models.DateField()
    reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["line", "date"]
        verbose_name_plural = "days off"
        constraints = [
            models.UniqueConstraint(fields=["line", "date"], name="%(app_label)s_%(class)s_once"),
        ]

    def __str__(self) -> str:
        return f"{self.line.code} {self.date}"


class DowntimeReason(models.Model):
    """Why a station stopped: a catalogue code that stations send with their state."""

    class Category(models.TextChoices):
        PLANNED = "planned", pgettext_lazy("downtime category", "Planned")
        UNPLANNED = "unplanned", pgettext_lazy("downtime category", "Unplanned")

    code = models.SlugField(max_length=40, unique=True)
    label = models.CharField(max_length=100)
    category = models.CharField(max_length=20, choices=Category.choices)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code


class StopReasonCorrection(models.Model):
    """An engineer's reason for a past stop (a state change); the latest correction wins. The
    state history itself stays as the station sent it."""

    state_change = models.ForeignKey(
        StationStateChange, on_delete=models.PROTECT, related_name="corrections"
    )
    reason = models.ForeignKey(DowntimeReason, on_delete=models.PROTECT, related_name="+")
    note = models.CharField(max_length=200, blank=True)
    corrected_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    corrected_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["state_change", "-corrected_at", "-id"]

    def __str__(self) -> str:
        return f"{self.state_change_id} -> {self.reason_id}"


class IdealCycleTime(models.Model):
    """The ideal cycle time of a recipe version, for performance; released versions never change,
    so it lives here: the latest row of a version wins."""

    recipe_version = models.ForeignKey(
        RecipeVersion, on_delete=models.PROTECT, related_name="ideal_cycle_times"
    )
    ideal_cycle_s = models.FloatField()
    set_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    set_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["recipe_version", "-set_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ideal_cycle_s__gt=0), name="%(app_label)s_%(class)s_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.recipe_version_id}: {self.ideal_cycle_s} s"


class EquipmentStatusChange(models.Model):
    """A registered item locked out, returned to service or retired: its status at any moment."""

    equipment = models.ForeignKey(
        "Equipment", on_delete=models.PROTECT, related_name="status_changes"
    )
    status = models.CharField(max_length=20)
    reason = models.CharField(max_length=200)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField()

    class Meta:
        ordering = ["equipment", "-at", "-id"]

    def __str__(self) -> str:
        return f"{self.equipment_id} {self.status} at {self.at}"


class EquipmentCalibration(models.Model):
    """A calibration of a registered item and the date its next one is due."""

    equipment = models.ForeignKey(
        "Equipment", on_delete=models.PROTECT, related_name="calibrations"
    )
    calibrated_at = models.DateTimeField()
    due = models.DateField()
    note = models.CharField(max_length=200, blank=True)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["equipment", "-calibrated_at", "-id"]

    def __str__(self) -> str:
        return f"{self.equipment_id} calibrated {self.calibrated_at:%Y-%m-%d}, due {self.due}"
