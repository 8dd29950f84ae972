"""What is made: material lots, batches, cells, and every record of their making."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex, OpClass
from django.db import models
from django.db.models import Exists, F, Func, IntegerField, OuterRef, Q, Value
from django.db.models.fields.json import DataContains
from django.db.models.functions import Now, Upper
from django.db.models.lookups import GreaterThan
from django.utils import timezone
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from lines.models import (
    CellDesign,
    Line,
    RecipeVersion,
    Route,
    RouteStep,
    Station,
    StationKind,
)


def search_index(column: str, name: str, **options) -> GinIndex:
    """A trigram index for the search, which matches a code anywhere ignoring case
    (`UPPER(column) LIKE UPPER('%query%')`, what Django's icontains writes)."""
    return GinIndex(OpClass(Upper(column), name="gin_trgm_ops"), name=name, **options)


class MaterialRole(models.TextChoices):
    CATHODE = "cathode", _("Composite cathode sheet")
    ELECTROLYTE = "electrolyte", _("Solid-electrolyte sheet")
    ANODE = "anode", _("Anode")
    CURRENT_COLLECTOR = "current_collector", _("Current collector")
    POUCH = "pouch", _("Pouch laminate")


class DesignMaterial(models.Model):
    """The bill of materials: how much of each role one cell of a design consumes."""

    design = models.ForeignKey(CellDesign, on_delete=models.CASCADE, related_name="materials")
    role = models.CharField(max_length=20, choices=MaterialRole.choices)
    quantity_per_cell = models.DecimalField(max_digits=12, decimal_places=6)
    unit = models.CharField(max_length=10, help_text="Unit of the lot's quantity, e.g. m2, pcs, g")

    class Meta:
        ordering = ["design", "role"]
        constraints = [
            models.UniqueConstraint(
                fields=["design", "role"], name="%(app_label)s_%(class)s_role_once"
            ),
            models.CheckConstraint(
                condition=Q(quantity_per_cell__gt=0),
                name="%(app_label)s_%(class)s_quantity_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.design.code} {self.role} {self.quantity_per_cell} {self.unit}"


class MaterialLot(models.Model):
    """A lot of incoming or intermediate material (a roll, or a sheet lot cut from one)."""

    class Status(models.TextChoices):
        QUARANTINE = "quarantine", _("Quarantine (incoming inspection)")
        RELEASED = "released", _("Released for use")
        CONSUMED = "consumed", _("Used up")
        REJECTED = "rejected", pgettext_lazy("lot status", "Rejected")

    # Only a released lot may be consumed; the others stop a cell that consumes them.
    TRANSITIONS = {
        Status.QUARANTINE: {Status.RELEASED, Status.REJECTED},
        Status.RELEASED: {Status.CONSUMED, Status.QUARANTINE, Status.REJECTED},
        Status.REJECTED: {Status.QUARANTINE},
        Status.CONSUMED: {Status.RELEASED},  # counted used up by mistake
    }

    code = models.SlugField(max_length=50, unique=True)
    role = models.CharField(max_length=20, choices=MaterialRole.choices)
    material = models.CharField(max_length=100)
    supplier = models.CharField(max_length=100, blank=True)
    supplier_lot = models.CharField(max_length=100, blank=True)
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="children",
        help_text="The roll this sheet lot was cut from",
    )
    quantity = models.DecimalField(max_digits=14, decimal_places=4)
    unit = models.CharField(max_length=10)
    unit_cost = models.DecimalField(max_digits=12, decimal_places=6, help_text="Cost per unit")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.RELEASED)
    received_at = models.DateTimeField()
    expires_at = models.DateTimeField(
        null=True, blank=True, help_text="After this the lot may not be consumed (shelf life)"
    )

    class Meta:
        ordering = ["-received_at", "code"]
        constraints = [
            models.CheckConstraint(
                condition=Q(quantity__gte=0) & Q(unit_cost__gte=0),
                name="%(app_label)s_%(class)s_quantity_and_cost_not_negative",
            ),
        ]
        indexes = [
            search_index("code", "batches_lot_code_srch_idx"),
            search_index("supplier_lot", "batches_lot_supplier_idx"),
        ]

    def __str__(self) -> str:
        return self.code

    def unusable_reason(self, at: datetime) -> str:
        """Why the lot may not be consumed at `at` (not released, or past its expiry), or "" when
        it may. A lot on hold stops its consumers through its hold."""
        if self.status != self.Status.RELEASED:
            return gettext("lot %(lot)s is %(status)s") % {
                "lot": self.code,
                "status": self.get_status_display().lower(),
            }
        if self.expires_at is not None and self.expires_at <= at:
            return gettext("lot %(lot)s expired on %(expiry)s") % {
                "lot": self.code,
                "expiry": f"{timezone.localtime(self.expires_at):%Y-%m-%d %H:%M}",
            }
        return ""


class Batch(models.Model):
    """A production order: N cells of one design along one route of a line."""

    class Status(models.TextChoices):
        PLANNED = "planned", _("Planned")
        IN_PROGRESS = "in_progress", _("In progress")
        COMPLETED = "completed", _("Completed")
        CANCELLED = "cancelled", _("Cancelled")

    TRANSITIONS = {
        Status.PLANNED: {Status.IN_PROGRESS, Status.CANCELLED},
        Status.IN_PROGRESS: {Status.COMPLETED},
        Status.COMPLETED: set(),
        Status.CANCELLED: set(),
    }

    code = models.SlugField(max_length=40, unique=True)
    line = models.ForeignKey(Line, on_delete=models.PROTECT, related_name="batches")
    design = models.ForeignKey(CellDesign, on_delete=models.PROTECT, related_name="batches")
    route = models.ForeignKey(Route, on_delete=models.PROTECT, related_name="batches")
    planned_quantity = models.PositiveIntegerField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PLANNED)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "batches"
        constraints = [
            models.CheckConstraint(
                condition=Q(planned_quantity__gte=1) & Q(planned_quantity__lte=10000),
                name="%(app_label)s_%(class)s_quantity_in_range",
            ),
        ]
        indexes = [
            # Batches in progress on a line: WHERE line_id=.. AND status=..
            models.Index(fields=["line", "status"], name="batches_batch_line_status_idx"),
            search_index("code", "batches_batch_code_srch_idx"),
        ]

    def __str__(self) -> str:
        return self.code


class BatchMaterial(models.Model):
    """A lot planned for a batch; stacking reports what each cell really consumed."""

    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="planned_materials")
    role = models.CharField(max_length=20, choices=MaterialRole.choices)
    lot = models.ForeignKey(MaterialLot, on_delete=models.PROTECT, related_name="planned_for")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["batch", "role"], name="%(app_label)s_%(class)s_role_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.batch.code} {self.role} {self.lot.code}"


class CellQuerySet(models.QuerySet):
    @staticmethod
    def _open_hold_over_cell() -> Exists:
        return Exists(
            Hold.cells.through.objects.filter(cell=OuterRef("pk"), hold__status=Hold.Status.OPEN)
        )

    def with_hold_state(self) -> CellQuerySet:
        """Annotate `held`: an open hold covers the cell (holds are the one source of truth)."""
        return self.annotate(held=self._open_hold_over_cell())

    def on_hold(self) -> CellQuerySet:
        """The cells an open hold covers. A filter, not an annotation, so that PostgreSQL joins
        the held cells once: counting `held` as an aggregate's FILTER instead asks the holds
        again for every cell, seconds over a batch of 10,000."""
        return self.filter(self._open_hold_over_cell())


class Cell(models.Model):
    """One cell; `next_step` is the route step it must do next (none once the route is done)."""

    class Status(models.TextChoices):
        PLANNED = "planned", _("Planned")
        IN_PROCESS = "in_process", _("In process")
        COMPLETED = "completed", _("Completed")
        SCRAPPED = "scrapped", _("Scrapped")

    TRANSITIONS = {
        Status.PLANNED: {Status.IN_PROCESS, Status.COMPLETED, Status.SCRAPPED},
        Status.IN_PROCESS: {Status.IN_PROCESS, Status.COMPLETED, Status.SCRAPPED},
        # A completed cell can be sent back to re-run a step (rework) or scrapped.
        Status.COMPLETED: {Status.IN_PROCESS, Status.SCRAPPED},
        Status.SCRAPPED: set(),
    }

    serial = models.SlugField(max_length=50, unique=True)
    # No index of its own: (batch, position) and (batch, next_step) lead with it.
    batch = models.ForeignKey(Batch, on_delete=models.PROTECT, related_name="cells", db_index=False)
    position = models.PositiveIntegerField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PLANNED)
    # No index of its own: every step a cell moves rewrites each of the cell's index entries, and
    # batches_cell_wip_idx (next_step, batch), for the cells that have one, serves a step's
    # cells and the check that a step is no longer used.
    next_step = models.ForeignKey(
        RouteStep,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    grade = models.CharField(max_length=10, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    objects = CellQuerySet.as_manager()

    class Meta:
        ordering = ["batch", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["batch", "position"], name="%(app_label)s_%(class)s_position_per_batch"
            ),
            # A cell still on its route knows its next step; a finished one has none.
            models.CheckConstraint(
                condition=Q(status__in=["planned", "in_process"], next_step__isnull=False)
                | Q(status__in=["completed", "scrapped"], next_step__isnull=True),
                name="%(app_label)s_%(class)s_next_step_matches_status",
            ),
        ]
        indexes = [
            # Cells waiting at a step of a batch (line view WIP): WHERE batch_id=.. AND next_step_id=..
            models.Index(fields=["batch", "next_step"], name="batches_cell_batch_step_idx"),
            # The cells still on their route, a few thousand among a year's million: the line
            # view's WIP per step reads these, never the finished cells.
            models.Index(
                fields=["next_step", "batch"],
                condition=Q(next_step__isnull=False),
                name="batches_cell_wip_idx",
            ),
            search_index("serial", "batches_cell_serial_srch_idx"),
            # A serial typed or scanned in any case (the search's exact match, serial__iexact).
            models.Index(Upper("serial"), name="batches_cell_serial_upper_idx"),
            # The cells completed today and this week (home), by time among a year's.
            models.Index(
                fields=["completed_at"],
                include=["batch"],
                condition=Q(status="completed"),
                name="batches_cell_completed_idx",
            ),
            # Scrapped cells, a few in a hundred: yield's scrap counts (quality.yields) start
            # from them, WHERE status = 'scrapped'.
            models.Index(
                fields=["id"], condition=Q(status="scrapped"), name="batches_cell_scrapped_idx"
            ),
        ]

    def __str__(self) -> str:
        return self.serial


# A run that reported a defect code, and one that names a violated parameter (an object in its
# violations array): the Pareto's predicates (quality.pareto) and its partial indexes below.
REPORTS_DEFECTS = GreaterThan(
    Func(F("defects"), function="cardinality", output_field=IntegerField()), 0
)
REPORTS_VIOLATIONS = DataContains(F("violations"), Value([{}], output_field=models.JSONField()))


class ProcessRun(models.Model):
    """One step done on one cell: where, on what, under which recipe version, when, with what verdict."""

    class Verdict(models.TextChoices):
        PASS = "pass", _("Pass")
        FAIL = "fail", _("Fail")

    cell = models.ForeignKey(Cell, on_delete=models.PROTECT, related_name="runs")
    step = models.ForeignKey(RouteStep, on_delete=models.PROTECT, related_name="+")
    # No index of its own: (station, equipment_ref) and (station, finished_at) lead with it.
    station = models.ForeignKey(
        Station, on_delete=models.PROTECT, related_name="runs", db_index=False
    )
    recipe_version = models.ForeignKey(RecipeVersion, on_delete=models.PROTECT, related_name="runs")
    equipment_ref = models.CharField(
        max_length=60,
        blank=True,
        help_text="Press cycle, vessel load or fixture id as the station sent it",
    )
    # The registered item the result named (its channel, else its fixture, else `equipment`);
    # a code the registry does not know stays text only.
    equipment = models.ForeignKey(
        "lines.Equipment", null=True, blank=True, on_delete=models.PROTECT, related_name="runs"
    )
    # Defaults in the database too: rows copied in with the columns they had before still fit.
    fixture_ref = models.CharField(
        max_length=60, blank=True, default="", db_default="", help_text="Fixture as sent"
    )
    channel_ref = models.CharField(
        max_length=60, blank=True, default="", db_default="", help_text="Channel as sent"
    )
    operator = models.CharField(max_length=150, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField()
    recorded_at = models.DateTimeField(auto_now_add=True)
    verdict = models.CharField(max_length=10, choices=Verdict.choices)
    equipment_verdict = models.CharField(max_length=10, choices=Verdict.choices, blank=True)
    defects = ArrayField(models.CharField(max_length=30), default=list, blank=True)
    violations = models.JSONField(default=list, blank=True)
    event_id = models.CharField(max_length=200, blank=True, help_text="The station's event id")

    class Meta:
        ordering = ["cell", "finished_at", "id"]
        indexes = [
            # Every cell of one press cycle (the press-cycle hold): WHERE station_id=.. AND equipment_ref=..
            models.Index(fields=["station", "equipment_ref"], name="batches_run_station_equip_idx"),
            # Today's results per station (line view), and a window's for OEE: WHERE station_id
            # IN (..) AND finished_at>=.., from the index alone (hence what it includes), so
            # one line's reads never pass by the other line's results; and a station's last
            # result (ORDER BY finished_at DESC, id DESC LIMIT 1), found in the index itself,
            # not by walking every station's results back in time until one of its own comes
            # up, which an idle station beside busy ones made slow.
            models.Index(
                fields=["station", "finished_at", "id"],
                include=["recipe_version", "verdict"],
                name="batches_run_station_time_idx",
            ),
            # The first and last result of a selection in time (an export's windows), and the
            # results of a window across stations, read from the index alone (hence what it
            # includes): the home page's week, an SPC chart's runs.
            models.Index(
                fields=["finished_at"],
                include=["id", "cell", "station", "step", "verdict"],
                name="batches_run_finished_idx",
            ),
            # Press cycles in the search; most runs name none, so they are left out.
            search_index(
                "equipment_ref",
                "batches_run_equip_srch_idx",
                condition=~Q(equipment_ref=""),
            ),
            # A station's message found by its event id (the search).
            models.Index(
                fields=["event_id"], name="batches_run_event_id_idx", condition=~Q(event_id="")
            ),
            # The defect Pareto over a line's stations or a period (quality.pareto): WHERE
            # cardinality(defects) > 0 AND station_id IN (..) AND finished_at >= ..; most runs
            # report no defect, so they are left out. With the step and the defects, a line's,
            # a step's or a period's Pareto reads the index alone (runs are only inserted, so
            # their pages are all visible once vacuumed).
            models.Index(
                fields=["station", "finished_at"],
                include=["step", "defects"],
                name="batches_run_defects_idx",
                condition=Q(REPORTS_DEFECTS),
            ),
            # The same for violated parameters: WHERE violations @> '[{}]' AND ..
            models.Index(
                fields=["station", "finished_at"],
                include=["step", "violations"],
                name="batches_run_violations_idx",
                condition=Q(REPORTS_VIOLATIONS),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.cell.serial} {self.step.station_kind} {self.verdict}"


class CellStep(models.Model):
    """A cell at one kind of step, summed from its results there: the first one (by time, then
    id) and whether it passed, how many passed and how many failed (more than one result:
    reworked).

    Written by the database only, by a trigger on each statement that adds results (batches
    migrations 0021 and 0026), in the same transaction; the runtime role may only read it. Yield
    and a batch's progress read these rows instead of ranking or counting every result.

    The first run's columns that a quality selection filters on (quality.selection) are copied
    here, so yield selects these rows without joining the runs.
    """

    cell = models.ForeignKey(Cell, on_delete=models.CASCADE, related_name="+", db_index=False)
    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="+", db_index=False)
    step = models.CharField(max_length=20, choices=StationKind.choices)
    first_run = models.ForeignKey(ProcessRun, on_delete=models.CASCADE, related_name="+")
    first_at = models.DateTimeField()
    first_passed = models.BooleanField()
    passes = models.PositiveIntegerField()
    fails = models.PositiveIntegerField()
    # Copies of the first run's (and its cell's batch's design). No keys of their own: the first
    # run's keys already protect what they name, and each key is one more lookup per result.
    station = models.ForeignKey(
        Station, on_delete=models.DO_NOTHING, related_name="+", db_index=False, db_constraint=False
    )
    equipment_ref = models.CharField(max_length=60, blank=True)
    recipe_version = models.ForeignKey(
        RecipeVersion,
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    design = models.ForeignKey(
        CellDesign,
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["cell", "step"], name="batches_cellstep_once"),
        ]
        indexes = [
            # A batch's cell steps (its yield figures, quality migration 0006), and per step
            # from the index alone.
            models.Index(
                fields=["batch", "step"],
                include=["passes", "fails"],
                name="batches_cellstep_batch_idx",
            ),
            # Yield of a station, or of a line's few stations, whole or over a period
            # (quality.yields): WHERE station_id IN (..) AND first_at >= .. AND first_at < ..
            models.Index(fields=["station", "first_at"], name="batches_cellstep_station_idx"),
            # Yield over a period, of a line with most of the stations or of all:
            # WHERE first_at >= .. AND first_at < .. (the station's line joined after).
            models.Index(fields=["first_at"], name="batches_cellstep_first_at_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.cell_id} {self.step}: {self.passes} passed, {self.fails} failed"


class CellActivity(models.Model):
    """When a cell was last worked on: its latest result, latest failed result and latest result
    at its route's first step. The home page's counts of the cells worked on, failed and started
    today and this week are the cells whose latest such time falls in the window, read from one
    index instead of counting distinct cells over every result of the week.

    Written by the database only (batches migration 0034), in the transaction of each statement
    that adds results; the runtime role may only read it. Results are never changed or removed,
    so each time only moves forward.
    """

    # No keys of their own: the results' keys already protect what they name, and each key is
    # one more lookup per result.
    cell = models.OneToOneField(
        Cell, on_delete=models.DO_NOTHING, primary_key=True, related_name="+", db_constraint=False
    )
    # The cell's batch's line, where all its results are recorded (check_track_in).
    line = models.ForeignKey(
        Line, on_delete=models.DO_NOTHING, related_name="+", db_index=False, db_constraint=False
    )
    last_run_at = models.DateTimeField()
    last_failed_at = models.DateTimeField(null=True)
    last_started_at = models.DateTimeField(null=True)

    class Meta:
        indexes = [
            # The cells worked on since a moment, and all the home page counts of them, from the
            # index alone once vacuumed: WHERE last_run_at >= ..
            models.Index(
                fields=["last_run_at"],
                include=["line", "last_failed_at", "last_started_at"],
                name="batches_cellactivity_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.cell_id}: last worked on {self.last_run_at:%Y-%m-%d %H:%M}"


class BatchStepCount(models.Model):
    """A change to a batch's counts at one kind of step; the counts are the sums of its rows.

    `passed`: its cells with a passing result there (CellStep.passes > 0); `failed`: with a
    failing one (CellStep.fails > 0). A batch's progress (batches.selectors.progress_of) reads
    these sums instead of counting its cells' steps, ten thousand rows a batch.

    Written by the database only (batches migration 0033), in the transaction of the change:
    each statement that adds, changes or removes cell steps. Rows are only inserted there, so
    concurrent results never wait for one another on a batch's counter; beat's compaction
    (batches.tasks.compact_batch_step_counts) folds a batch's rows of a step into one. The
    runtime role may only read the table.
    """

    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="+", db_index=False)
    step = models.CharField(max_length=20, choices=StationKind.choices)
    passed = models.IntegerField()
    failed = models.IntegerField()

    class Meta:
        indexes = [
            # A batch's sums per step, from the index alone once vacuumed.
            models.Index(
                fields=["batch", "step"],
                include=["passed", "failed"],
                name="batches_batchstepcount_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.batch_id} {self.step}: {self.passed:+} passed, {self.failed:+} failed"


class Measurement(models.Model):
    """A scalar measured at a step, with the limits it was judged against at the time."""

    # Indexed by (run, name) and (name, run) below, not each on its own: seven rows per result
    # are written, so every index here is paid for on each one.
    run = models.ForeignKey(
        ProcessRun, on_delete=models.CASCADE, related_name="measurements", db_index=False
    )
    name = models.SlugField(max_length=60, db_index=False)
    value = models.FloatField()
    unit = models.CharField(max_length=20, blank=True)
    min = models.FloatField(null=True, blank=True)
    max = models.FloatField(null=True, blank=True)
    in_spec = models.BooleanField(null=True, help_text="Empty where the parameter has no limits")
    # Its run's recorded_at, copied: the key of the table's monthly partitions (core/partitions.py),
    # a time the server set, which a station's clock cannot send into a month of its own. The
    # primary key in the database is (id, recorded_at); ids stay unique by their sequence.
    recorded_at = models.DateTimeField(db_default=Now())
    # Its run's cell, station and finished_at, copied (a run is never changed): a parameter's
    # latest points at a step are then read from one index, newest first, and joined to their
    # cells without visiting tens of thousands of runs (quality.spc). The run's own foreign keys
    # protect the cell and the station.
    cell = models.ForeignKey(
        Cell, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    station = models.ForeignKey(
        "lines.Station",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )
    finished_at = models.DateTimeField()

    class Meta:
        ordering = ["run", "name"]
        constraints = [
            # Per run: recorded_at is the run's, so adding it (PostgreSQL enforces uniqueness
            # within a partition only) changes nothing.
            models.UniqueConstraint(
                fields=["run", "name", "recorded_at"], name="%(app_label)s_%(class)s_name_per_run"
            ),
        ]
        indexes = [
            # One parameter over time (SPC): its points in time order, with what counting them and
            # keeping a line's (station, partition key, value) needs, read off the index alone.
            models.Index(
                fields=["name", "finished_at", "run"],
                include=["station", "value", "recorded_at"],
                name="batches_measurement_time_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name}={self.value} {self.unit}"


class Curve(models.Model):
    """One curve of a run stored as two arrays in one row (not a row per point)."""

    run = models.ForeignKey(ProcessRun, on_delete=models.CASCADE, related_name="curves")
    name = models.SlugField(max_length=60)
    unit = models.CharField(max_length=20, blank=True)
    x_name = models.CharField(max_length=30, default="t_s")
    x_unit = models.CharField(max_length=20, default="s")
    x = ArrayField(models.FloatField())
    y = ArrayField(models.FloatField())
    # Its run's recorded_at, copied: the partition key, as Measurement's.
    recorded_at = models.DateTimeField(db_default=Now())

    class Meta:
        ordering = ["run", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "name", "recorded_at"], name="%(app_label)s_%(class)s_name_per_run"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.run_id} {self.name}"

    # What an x axis is called on a page: the quantity, then the unit.
    X_AXES = {"t_s": "time", "capacity_ah": "capacity", "voltage_v": "voltage", "cycle": "cycle"}

    @property
    def x_label(self) -> str:
        name = self.X_AXES.get(self.x_name, self.x_name.replace("_", " "))
        return f"{name} ({self.x_unit})" if self.x_unit else name


class Consumption(models.Model):
    """Genealogy: a material lot consumed into a cell in a role."""

    cell = models.ForeignKey(Cell, on_delete=models.PROTECT, related_name="consumptions")
    # Indexed with the cell below: a lot's consumers in cell order, and counted from the index.
    lot = models.ForeignKey(
        MaterialLot, on_delete=models.PROTECT, related_name="consumptions", db_index=False
    )
    role = models.CharField(max_length=20, choices=MaterialRole.choices)
    quantity = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal("1"))
    run = models.ForeignKey(
        ProcessRun, null=True, blank=True, on_delete=models.PROTECT, related_name="consumptions"
    )
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["cell", "role"]
        constraints = [
            models.UniqueConstraint(
                fields=["cell", "role", "lot"], name="%(app_label)s_%(class)s_once"
            ),
            models.CheckConstraint(
                condition=Q(quantity__gt=0), name="%(app_label)s_%(class)s_quantity_positive"
            ),
        ]
        indexes = [models.Index(fields=["lot", "cell"], name="batches_consumption_lot_idx")]

    def __str__(self) -> str:
        return f"{self.lot.code} -> {self.cell.serial} ({self.role})"


class LotConsumerCount(models.Model):
    """A change to a lot's consumer counts; a lot's counts are the sums of its rows.

    `consumptions`: the lot's own consumptions (the lots list's cells). `cells`: the cells that
    consumed the lot or a lot cut from it, each once however many of those lots it took, and
    `in_process`, `completed`, `scrapped`: how many of them are in that status now.

    Written by the database only (batches migration 0029), in the transaction of the change: a
    statement adding or removing consumptions, one changing cells' statuses, one moving a lot to
    another parent. Rows are only inserted there, so concurrent results never wait for one
    another on a lot's counter; beat's compaction (batches.tasks.compact_lot_consumer_counts)
    folds a lot's rows into one. The runtime role may only read the table.
    """

    lot = models.ForeignKey(MaterialLot, on_delete=models.CASCADE, related_name="+", db_index=False)
    consumptions = models.IntegerField()
    cells = models.IntegerField()
    in_process = models.IntegerField()
    completed = models.IntegerField()
    scrapped = models.IntegerField()

    class Meta:
        indexes = [
            # A lot's sums, from the index alone once vacuumed.
            models.Index(
                fields=["lot"],
                include=["consumptions", "cells", "in_process", "completed", "scrapped"],
                name="batches_lotconsumercount_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.lot_id}: {self.consumptions:+d} consumptions, {self.cells:+d} cells"


class HoldRule(models.Model):
    """A version of a hold rule's thresholds: its code names the logic (quality.rules), its
    parameters the thresholds. A version is put in force once and retired, never changed."""

    code = models.CharField(max_length=40)
    version = models.PositiveIntegerField()
    parameters = models.JSONField(default=dict, blank=True)
    in_force = models.BooleanField(default=True)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["code", "version"], name="%(app_label)s_%(class)s_version_once"
            ),
            models.UniqueConstraint(
                fields=["code"],
                condition=Q(in_force=True),
                name="%(app_label)s_%(class)s_one_in_force",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} v{self.version}"

    @property
    def label(self) -> str:
        return f"rule:{self.code}@v{self.version}"


class Hold(models.Model):
    """A hold: stops the cells in its scope from moving on until quality dispositions them."""

    class Scope(models.TextChoices):
        CELL = "cell", _("Cell")
        BATCH = "batch", _("Batch")
        LOT = "lot", _("Material lot")
        PRESS_CYCLE = "press_cycle", _("Press cycle")
        # The cells processed in a dry-room zone during one excursion (lines.Excursion.code).
        EXCURSION = "excursion", _("Dry-room excursion")

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        CLOSED = "closed", _("Closed")

    class Disposition(models.TextChoices):
        RELEASE = "release", _("Release")
        REWORK = "rework", _("Rework")
        SCRAP = "scrap", _("Scrap")

    TRANSITIONS = {Status.OPEN: {Status.CLOSED}, Status.CLOSED: set()}

    scope = models.CharField(max_length=20, choices=Scope.choices)
    target = models.CharField(
        max_length=100, help_text="Serial, batch code, lot code or press cycle id"
    )
    batch = models.ForeignKey(
        Batch, null=True, blank=True, on_delete=models.PROTECT, related_name="holds"
    )
    lot = models.ForeignKey(
        MaterialLot, null=True, blank=True, on_delete=models.PROTECT, related_name="holds"
    )
    station = models.ForeignKey(
        Station,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="holds",
        help_text="The press station of a press-cycle hold",
    )
    run = models.ForeignKey(
        ProcessRun,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="holds",
        help_text="The failed run that opened an out-of-spec hold",
    )
    found_at = models.CharField(
        max_length=20,
        choices=StationKind.choices,
        blank=True,
        help_text="The step whose failure opened the hold: where a rework sends cells back",
    )
    cells = models.ManyToManyField(Cell, related_name="holds", blank=True)
    reason = models.TextField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    rule = models.ForeignKey(
        HoldRule, null=True, blank=True, on_delete=models.PROTECT, related_name="holds"
    )
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    opened_at = models.DateTimeField(auto_now_add=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    closed_at = models.DateTimeField(null=True, blank=True)
    disposition = models.CharField(max_length=10, choices=Disposition.choices, blank=True)
    disposition_reason = models.TextField(blank=True)
    # A disposition of many cells is carried out by a worker (batches.tasks): what was asked,
    # by whom and when, until the worker closes the hold; why it could not, if it could not.
    closing = models.JSONField(null=True, blank=True)
    closing_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-opened_at", "-id"]
        constraints = [
            # Opened by exactly one of a person or a rule.
            models.CheckConstraint(
                condition=Q(opened_by__isnull=False, rule__isnull=True)
                | Q(opened_by__isnull=True, rule__isnull=False),
                name="%(app_label)s_%(class)s_opened_by_person_or_rule",
            ),
            models.CheckConstraint(
                condition=Q(status="open", closed_at__isnull=True, disposition="")
                | (Q(status="closed", closed_at__isnull=False) & ~Q(disposition="")),
                name="%(app_label)s_%(class)s_closed_has_disposition",
            ),
            models.CheckConstraint(
                condition=~Q(reason=""), name="%(app_label)s_%(class)s_reason_required"
            ),
            # A rule fires once per target while its hold is open (rules re-evaluate on every result).
            models.UniqueConstraint(
                fields=["rule", "scope", "target"],
                condition=Q(status="open", rule__isnull=False),
                name="%(app_label)s_%(class)s_rule_once_per_open_target",
            ),
        ]
        indexes = [
            # The holds queue: WHERE status='open' ORDER BY opened_at
            models.Index(fields=["status", "opened_at"], name="batches_hold_status_idx"),
            # Every hold, newest first (the API's list): a page without sorting them all.
            models.Index(fields=["-opened_at", "-id"], name="batches_hold_recent_idx"),
        ]

    def __str__(self) -> str:
        return f"hold {self.pk} on {self.scope} {self.target}"

    @property
    def opened_by_label(self) -> str:
        if self.rule_id:
            return self.rule.label
        return self.opened_by.get_username() if self.opened_by_id else ""


class HoldBatch(models.Model):
    """A batch with cells under a hold: a lot's, a press cycle's or an excursion's hold reaches
    every batch its cells belong to. A batch's holds (batches.selectors.holds_of_batch) are read
    here instead of through its ten thousand cells.

    Written by the database only (batches migration 0035), in the transaction of each statement
    that adds cells to holds; cells never leave a hold, so rows are only added. The runtime role
    may only read it.
    """

    # No keys of their own: the hold's cells' keys already protect what they name.
    hold = models.ForeignKey(
        Hold, on_delete=models.DO_NOTHING, related_name="+", db_index=False, db_constraint=False
    )
    batch = models.ForeignKey(
        Batch, on_delete=models.DO_NOTHING, related_name="+", db_index=False, db_constraint=False
    )

    class Meta:
        constraints = [
            # Also a batch's holds, from the index alone: WHERE batch_id = ..
            models.UniqueConstraint(fields=["batch", "hold"], name="batches_holdbatch_once"),
        ]

    def __str__(self) -> str:
        return f"hold {self.hold_id} on cells of batch {self.batch_id}"


from batches.recipe_overrides import CellRecipeOverride  # noqa: E402, F401  (an arm's setpoints)
