"""Dry-room sensor readings, and which holds each excursion opened."""

from __future__ import annotations

from django.contrib.postgres.indexes import BrinIndex
from django.db import models
from django.db.models import Q

from batches.models import Hold
from lines.models import Excursion, Zone


class RealField(models.FloatField):
    """A 4-byte float: a sensor's dew point, temperature or H2S needs no more than 7 digits, and a
    year of one reading a second per sensor is 31.5 million rows."""

    def db_type(self, connection) -> str:
        return "real"


class Reading(models.Model):
    """One sensor reading in a zone at its own time. The key (zone, sensor, at) makes a repeat a
    no-op; there is no surrogate id, so each row carries only the key and the three values."""

    pk = models.CompositePrimaryKey("zone_id", "sensor", "at")
    zone = models.ForeignKey(Zone, on_delete=models.PROTECT, related_name="+", db_index=False)
    sensor = models.CharField(max_length=60)
    at = models.DateTimeField()
    dew_point_c = RealField(null=True)
    temperature_c = RealField(null=True)
    h2s_ppm = RealField(null=True)

    class Meta:
        ordering = ["zone", "sensor", "at"]
        indexes = [
            # Readings arrive nearly in time order, so a BRIN index (a few pages for a year)
            # serves the zone page's window, WHERE zone_id=.. AND at BETWEEN ..; the primary key
            # serves judging one sensor's readings around a late one.
            BrinIndex(fields=["at"], name="environment_reading_at_brin"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(dew_point_c__isnull=False)
                | Q(temperature_c__isnull=False)
                | Q(h2s_ppm__isnull=False),
                name="%(app_label)s_%(class)s_has_a_value",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.zone_id}/{self.sensor}@{self.at.isoformat()}"


class ExcursionHold(models.Model):
    """A hold an excursion opened: the hold of its cells, and each open lot's hold."""

    excursion = models.ForeignKey(Excursion, on_delete=models.PROTECT, related_name="+")
    hold = models.ForeignKey(Hold, on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["excursion", "hold"], name="%(app_label)s_%(class)s_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.excursion_id} -> hold {self.hold_id}"
