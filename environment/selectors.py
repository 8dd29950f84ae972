"""Reads of the dry rooms for the pages: a zone's readings over a window (downsampled), its
excursions with what each held, and each zone's current dew point."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connection
from django.db.models import Count, Q
from django.utils import timezone

from batches.models import Hold
from environment.judging import beyond, bounds
from environment.models import ExcursionHold
from lines.models import ZONE_QUANTITIES, Excursion, Line, Zone

# At most this many points per sensor and quantity on a chart, whatever the window.
CHART_POINTS = 600
# A zone's current dew point is its newest reading no older than this; older is "no reading".
CURRENT_WITHIN = timedelta(minutes=15)
EXCURSIONS_SHOWN = 50


def zone_series(zone: Zone, since: datetime, until: datetime) -> dict[str, dict[str, list]]:
    """quantity -> sensor -> [[epoch ms, value], ...] over the window, one point per bucket of
    window / CHART_POINTS. A bucket shows the worst reading of a quantity limited from above
    (dew point, H2S: the maximum), so an excursion never averages away; temperature its mean."""
    bucket_s = max(1, int((until - since).total_seconds() // CHART_POINTS))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT sensor, date_bin(%s::interval, at, %s) AS bucket, "
            "max(dew_point_c), avg(temperature_c), max(h2s_ppm) "
            "FROM environment_reading WHERE zone_id = %s AND at >= %s AND at <= %s "
            "GROUP BY sensor, bucket ORDER BY sensor, bucket",
            [timedelta(seconds=bucket_s), since, zone.pk, since, until],
        )
        rows = cursor.fetchall()
    series: dict[str, dict[str, list]] = {q: defaultdict(list) for q in ZONE_QUANTITIES}
    for sensor, bucket, *values in rows:
        ms = int(bucket.timestamp() * 1000)
        for quantity, value in zip(ZONE_QUANTITIES, values, strict=True):
            if value is not None:
                series[quantity][sensor].append([ms, round(float(value), 3)])
    return {q: dict(by_sensor) for q, by_sensor in series.items()}


@dataclass
class ExcursionRow:
    excursion: Excursion
    cells_hold: Hold | None = None
    lot_holds: list[Hold] = field(default_factory=list)


def zone_excursions(zone: Zone, since: datetime, until: datetime) -> list[ExcursionRow]:
    """The excursions overlapping the window, newest first, each with the hold of its cells
    (with `cell_count`) and the holds of the lots it found open (three queries)."""
    excursions = list(
        Excursion.objects.filter(zone=zone, started_at__lte=until)
        .filter(Q(ended_at__isnull=True) | Q(ended_at__gte=since))
        .order_by("-started_at", "-pk")[:EXCURSIONS_SHOWN]
    )
    for excursion in excursions:
        excursion.zone = zone
    rows = {e.pk: ExcursionRow(e) for e in excursions}
    codes = {e.code: e.pk for e in excursions}
    counted = [e.pk for e in excursions if e.counted_at]
    if counted:
        for hold in Hold.objects.filter(
            scope=Hold.Scope.EXCURSION, target__in=list(codes), rule__code="dry_room_excursion"
        ).annotate(cell_count=Count("cells")):
            row = rows[codes[hold.target]]
            # The newest hold under the name (a closed one is followed by a new one on a
            # result that stepped during the excursion afterwards).
            if row.cells_hold is None or hold.pk > row.cells_hold.pk:
                row.cells_hold = hold
        for link in (
            ExcursionHold.objects.filter(excursion_id__in=counted, hold__scope=Hold.Scope.LOT)
            .select_related("hold")
            .order_by("hold__target")
        ):
            rows[link.excursion_id].lot_holds.append(link.hold)
    return list(rows.values())


@dataclass(frozen=True)
class ZoneState:
    """A zone's newest dew point, and whether it is beyond the zone's limit."""

    zone: Zone
    sensor: str = ""
    at: datetime | None = None
    dew_point_c: float | None = None
    beyond: bool = False


def zone_states(line: Line) -> list[ZoneState]:
    """Each zone of the line with its current dew point (two queries)."""
    zones = list(Zone.objects.filter(line=line).order_by("code"))
    if not zones:
        return []
    with connection.cursor() as cursor:
        # The window keeps this to the last minutes of readings (the BRIN index on at).
        cursor.execute(
            "SELECT DISTINCT ON (zone_id) zone_id, sensor, at, dew_point_c "
            "FROM environment_reading WHERE zone_id = ANY(%s) AND at >= %s "
            "AND dew_point_c IS NOT NULL ORDER BY zone_id, at DESC, sensor",
            [[z.pk for z in zones], timezone.now() - CURRENT_WITHIN],
        )
        newest = {row[0]: row[1:] for row in cursor.fetchall()}
    states = []
    for zone in zones:
        if zone.pk not in newest:
            states.append(ZoneState(zone))
            continue
        sensor, at, value = newest[zone.pk]
        over = any(
            beyond(value, bound, limit)
            for quantity, bound, limit in bounds(zone)
            if quantity == "dew_point_c"
        )
        states.append(ZoneState(zone, sensor, at, value, over))
    return states
