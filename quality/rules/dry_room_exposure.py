"""A lot open in a dry room for longer than its material may be (the zone's exposure limit per
material role) is held when a step in the zone consumes it after that (DOMAIN.md, "Dry room").

Its open time in the zone runs from the first time one of the zone's stations consumed it (see
dry_room_excursion: the earliest evidence it was unpacked or cut there) to the step now
consuming it; a lot is not closed again once opened, so this is its cumulative open time. The
hold stops the cells that consumed it after the limit passed and every later consumer; those
that consumed it in time keep going.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Min
from django.db.models.functions import Coalesce
from django.utils.translation import gettext_lazy

from batches.hooks import StepApplied
from batches.models import Cell, Consumption, Hold, HoldRule, MaterialLot
from batches.selectors import lot_and_descendant_ids
from batches.services import open_hold
from lines.models import Zone
from quality.rules.registry import open_hold_for, rule

CODE = "dry_room_exposure"


def _exposure_limits_by_station() -> dict[int, list[tuple[Zone, dict[str, float]]]]:
    """Station -> the zones it is in that limit some role's exposure (read once per chunk)."""
    by_station: dict[int, list[tuple[Zone, dict[str, float]]]] = {}
    for zone in Zone.objects.exclude(exposure_limits_h={}).prefetch_related("stations"):
        for station in zone.stations.all():
            by_station.setdefault(station.pk, []).append((zone, zone.exposure_limits_h))
    return by_station


def _limited(step: StepApplied) -> list[tuple[Zone, MaterialLot, timedelta]]:
    """The lots of the step whose role a zone of its station limits, with the limit."""
    if not step.lots:
        return []
    zones = step.context.read_once("dry_room_exposure_limits", _exposure_limits_by_station)
    return [
        (zone, lot, timedelta(hours=limits[role]))
        for zone, limits in zones.get(step.run.station_id, [])
        for role, lot in step.lots.items()
        if role in limits
    ]


def first_use(zone: Zone, lot_ids: list[int]) -> dict[int, datetime]:
    """When each lot was first consumed at one of the zone's stations."""
    return dict(
        Consumption.objects.filter(lot_id__in=lot_ids, run__station__zones=zone)
        .values("lot_id")
        .annotate(first=Min(Coalesce("run__started_at", "run__finished_at")))
        .values_list("lot_id", "first")
    )


@rule(
    CODE,
    label=gettext_lazy("A lot open in a dry room longer than its material may be is held"),
    holds=Hold.Scope.LOT,
    applies=lambda step: bool(_limited(step)),
)
def dry_room_exposure(version: HoldRule, step: StepApplied) -> None:
    at = step.run.finished_at
    by_zone: dict[int, list[tuple[Zone, MaterialLot, timedelta]]] = {}
    for zone, lot, limit in _limited(step):
        by_zone.setdefault(zone.pk, []).append((zone, lot, limit))
    for entries in by_zone.values():
        zone = entries[0][0]
        opened = first_use(zone, [lot.pk for _, lot, _ in entries])
        for _, lot, limit in entries:
            since = opened.get(lot.pk, at)
            if at - since <= limit or open_hold_for(version, Hold.Scope.LOT, lot.code):
                continue
            expired = since + limit
            late = Consumption.objects.filter(
                lot_id__in=lot_and_descendant_ids([lot.pk]), run__finished_at__gt=expired
            ).values("cell_id")
            hours = limit.total_seconds() / 3600
            open_hold(
                scope=Hold.Scope.LOT,
                target=lot.code,
                cells=Cell.objects.filter(pk__in=late).order_by("pk"),
                by=version.label,
                rule=version,
                lot=lot,
                reason=f"Open in {zone.code} since {since:%Y-%m-%d %H:%M} UTC: longer than the "
                f"{hours:g} h a {lot.role} lot may be",
            )
