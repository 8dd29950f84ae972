"""Non-conformance reports: what went wrong, what contains it, why, what is done about it, and
the signed closure. Imported by quality.models, where Django finds them."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from batches.models import Hold
from lines.models import Line, StationKind


class NonConformance(models.Model):
    """A non-conformance report (NCR): one problem followed from containment to signed closure."""

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        CONTAINED = "contained", _("Contained")
        ANALYSED = "analysed", _("Root cause found")
        ACTIONS = "actions", _("Actions under way")
        VERIFICATION = "verification", _("Verified, awaiting closure")
        CLOSED = "closed", _("Closed")
        CANCELLED = "cancelled", _("Cancelled")

    # open: reported; contained: what stops it spreading is in place (the holds, a note);
    # analysed: root cause and five whys written; actions: corrective/preventive actions planned
    # and under way; verification: their effect checked and written down; closed: signed by
    # quality. A verification that finds the actions did not work sends it back to actions.
    # Any state short of closed may be cancelled with a reason (a duplicate, a false alarm).
    TRANSITIONS = {
        Status.OPEN: {Status.CONTAINED, Status.CANCELLED},
        Status.CONTAINED: {Status.ANALYSED, Status.CANCELLED},
        Status.ANALYSED: {Status.ACTIONS, Status.CANCELLED},
        Status.ACTIONS: {Status.VERIFICATION, Status.CANCELLED},
        Status.VERIFICATION: {Status.CLOSED, Status.ACTIONS, Status.CANCELLED},
        Status.CLOSED: set(),
        Status.CANCELLED: set(),
    }
    # Holds may join or leave the containment, and actions be done, while it is in these.
    ACTIVE = (Status.OPEN, Status.CONTAINED, Status.ANALYSED, Status.ACTIONS, Status.VERIFICATION)

    class RootCause(models.TextChoices):
        """The six M's of the Ishikawa diagram."""

        MAN = "man", _("Man (people)")
        MACHINE = "machine", _("Machine")
        METHOD = "method", _("Method")
        MATERIAL = "material", _("Material")
        MEASUREMENT = "measurement", _("Measurement")
        ENVIRONMENT = "environment", _("Mother nature (environment)")

    code = models.CharField(max_length=20, unique=True, help_text="NCR-<year>-<number>")
    year = models.PositiveSmallIntegerField()
    number = models.PositiveIntegerField(help_text="Sequential within the year")
    title = models.CharField(max_length=200)
    description = models.TextField()
    line = models.ForeignKey(Line, on_delete=models.PROTECT, related_name="nonconformances")
    step = models.CharField(
        max_length=20, choices=StationKind.choices, blank=True, help_text="Where it was found"
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.OPEN)
    holds = models.ManyToManyField(Hold, related_name="nonconformances", blank=True)
    opened_from = models.ForeignKey(
        Hold,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The hold it was opened from; empty when opened by hand",
    )
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    opened_at = models.DateTimeField(default=timezone.now)
    containment = models.TextField(blank=True, help_text="What stops it from spreading")
    contained_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    contained_at = models.DateTimeField(null=True, blank=True)
    root_cause = models.CharField(max_length=20, choices=RootCause.choices, blank=True)
    five_whys = models.TextField(blank=True)
    analysed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    analysed_at = models.DateTimeField(null=True, blank=True)
    verification = models.TextField(blank=True, help_text="How the actions were seen to work")
    verified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    verified_at = models.DateTimeField(null=True, blank=True)
    # The closure's electronic signature: the signer re-entered their password.
    signature_meaning = models.CharField(max_length=200, blank=True)
    signed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    signed_at = models.DateTimeField(null=True, blank=True)
    cancel_reason = models.TextField(blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-year", "-number"]
        verbose_name = "non-conformance report"
        constraints = [
            models.UniqueConstraint(
                fields=["year", "number"], name="%(app_label)s_%(class)s_number_per_year"
            ),
            models.CheckConstraint(
                condition=~Q(title="") & ~Q(description=""),
                name="%(app_label)s_%(class)s_title_and_description",
            ),
            # Root cause (and the five whys) from analysed on.
            models.CheckConstraint(
                condition=Q(status__in=["open", "contained"])
                | Q(status="cancelled")
                | (~Q(root_cause="") & ~Q(five_whys="")),
                name="%(app_label)s_%(class)s_analysed_has_root_cause",
            ),
            # Closed only signed, with its verification.
            models.CheckConstraint(
                condition=~Q(status="closed")
                | Q(
                    signed_by__isnull=False,
                    signed_at__isnull=False,
                    verified_at__isnull=False,
                )
                & ~Q(signature_meaning="")
                & ~Q(verification=""),
                name="%(app_label)s_%(class)s_closed_is_signed",
            ),
            models.CheckConstraint(
                condition=~Q(status="cancelled")
                | Q(cancelled_at__isnull=False) & ~Q(cancel_reason=""),
                name="%(app_label)s_%(class)s_cancelled_has_reason",
            ),
        ]
        indexes = [
            # The list page's and the API's default view: WHERE status IN (...) ORDER BY -year, -number.
            models.Index(fields=["status", "-year", "-number"], name="quality_ncr_status_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.title}"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE


class NonConformanceAction(models.Model):
    """A corrective or preventive action of an NCR, with its owner and due date."""

    class Kind(models.TextChoices):
        CORRECTIVE = "corrective", _("Corrective")
        PREVENTIVE = "preventive", _("Preventive")

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        DONE = "done", _("Done")

    TRANSITIONS = {Status.OPEN: {Status.DONE}, Status.DONE: set()}

    nonconformance = models.ForeignKey(
        NonConformance, on_delete=models.PROTECT, related_name="actions"
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    description = models.TextField()
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    due_date = models.DateField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    done_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    done_at = models.DateTimeField(null=True, blank=True)
    done_note = models.TextField(blank=True)

    class Meta:
        ordering = ["nonconformance", "due_date", "id"]
        verbose_name = "non-conformance action"
        constraints = [
            models.CheckConstraint(
                condition=~Q(description=""), name="%(app_label)s_%(class)s_description"
            ),
            models.CheckConstraint(
                condition=Q(status="open", done_at__isnull=True, done_by__isnull=True)
                | Q(status="done", done_at__isnull=False, done_by__isnull=False),
                name="%(app_label)s_%(class)s_done_has_who_and_when",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} action {self.pk} of NCR {self.nonconformance_id}"

    @property
    def overdue(self) -> bool:
        return self.status == self.Status.OPEN and self.due_date < timezone.localdate()
