from __future__ import annotations

from django.conf import settings
from django.db import models


class Event(models.Model):
    """One append-only row per transition: who, when, what, why (the audit trail).

    Subjects are named by their codes, not foreign keys, so the trail outlives what it describes
    and every app can write to it. The database refuses UPDATE and DELETE (migration 0002).
    """

    occurred_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.CharField(
        max_length=150, help_text="A username, 'rule:<code>' or 'station:<code>'"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    verb = models.CharField(max_length=60)
    subject_type = models.CharField(max_length=30)
    subject = models.CharField(max_length=200)
    reason = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [
            # The timeline of one cell, batch, lot or hold: WHERE subject_type=.. AND subject=..
            models.Index(
                fields=["subject_type", "subject", "-occurred_at"], name="audit_event_subject_idx"
            ),
            # A batch's or lot's timeline shows its holds' openings and closings, named by the
            # hold's id in data (batches.selectors.batch_timeline).
            models.Index(
                models.F("data__hold"),
                condition=models.Q(verb__in=["hold_opened", "hold_closed"]),
                name="audit_event_hold_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.occurred_at:%Y-%m-%d %H:%M} {self.actor} {self.verb} {self.subject_type} {self.subject}"
