"""A dry-room excursion that lasts longer than its zone tolerates holds what it touched (DOMAIN.md,
"Dry room"): the cells whose steps ran at the zone's stations during it, and the lots open in the
zone then.

Two ways in. environment/ judges a zone's readings and calls `hold_exposed` the moment an
excursion is found to count (and again whenever a late reading widens one that counts). A result
applied later for a step at one of the zone's stations that ran during a counted excursion is
held by the step check below. A step applied while the excursion is being counted sees neither
(each transaction misses the other's uncommitted rows), so once the count is committed
environment/ gathers again under the zone's exclusive lock (`gather_again`), while the step check
reads the excursions under the zone's shared lock: that gathering waits for every step that may
have read them before the count was committed, and any later step finds it counted.

"Open in the zone" from what the record holds: the MES keeps no unpacking event, so a lot counts
as open in a zone from the first time one of the zone's stations consumed it (the earliest
evidence it was unpacked or cut there) until it was used up: a lot still released, or used up
but consumed there at or after the excursion began.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from django.db import connection
from django.db.models import Max, Min, Q
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext_lazy

from audit.services import record_event
from batches.hooks import StepApplied
from batches.models import Cell, Consumption, Hold, HoldRule, MaterialLot, ProcessRun
from batches.selectors import lot_and_descendant_ids
from batches.services import open_hold
from core.locks import lock_names
from lines.models import Excursion, Zone
from quality.rules.registry import open_hold_for, rule

CODE = "dry_room_excursion"
# How far back the step check looks for counted excursions: a result arriving later than this
# after its step is not held by an excursion it ran in (the excursion's own hold gathered the
# steps recorded by then).
STEP_LOOKBACK = timedelta(days=30)


def zone_lock_name(zone: Zone | str) -> str:
    return f"dry-room:{zone if isinstance(zone, str) else zone.code}"


def _zones_by_station() -> dict[int, list[tuple[int, str]]]:
    """Station -> the zones (id, code) it is in (read once per chunk of results)."""
    zones: dict[int, list[tuple[int, str]]] = {}
    for zone_id, station_id, code in Zone.stations.through.objects.values_list(
        "zone_id", "station_id", "zone__code"
    ):
        zones.setdefault(station_id, []).append((zone_id, code))
    return zones


def _counted_excursions_by_zone(zones: dict[int, list[tuple[int, str]]]):
    """Zone -> its counted excursions of the last STEP_LOOKBACK, read under the zones' shared
    locks (see the module's docstring); once per chunk that steps in a zone at all."""

    def read() -> dict[int, list[Excursion]]:
        names = sorted({zone_lock_name(code) for pairs in zones.values() for _, code in pairs})
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock_shared(hashtextextended(name, 0)) "
                "FROM unnest(%s::text[]) WITH ORDINALITY AS names(name, position) "
                "ORDER BY position",
                [names],
            )
        recent = timezone.now() - STEP_LOOKBACK
        excursions: dict[int, list[Excursion]] = {}
        for excursion in (
            Excursion.objects.select_related("zone")
            .filter(counted_at__isnull=False)
            .filter(Q(ended_at__isnull=True) | Q(ended_at__gte=recent))
        ):
            excursions.setdefault(excursion.zone_id, []).append(excursion)
        return excursions

    return read


def ran_during(run: ProcessRun, excursion: Excursion) -> bool:
    """The step's time (from its start, if sent, to its finish) overlaps the excursion."""
    began = run.started_at or run.finished_at
    return run.finished_at >= excursion.started_at and (
        excursion.ended_at is None or began <= excursion.ended_at
    )


def _excursions_of(step: StepApplied) -> list[Excursion]:
    zones = step.context.read_once("dry_room_zones", _zones_by_station)
    if step.run.station_id not in zones:
        return []
    excursions = step.context.read_once("dry_room_excursions", _counted_excursions_by_zone(zones))
    return [
        e
        for zone_id, _ in zones[step.run.station_id]
        for e in excursions.get(zone_id, [])
        if ran_during(step.run, e)
    ]


@rule(
    CODE,
    label=gettext_lazy("A dry-room excursion holds the cells and open lots it touched"),
    holds=Hold.Scope.EXCURSION,
    applies=lambda step: bool(_excursions_of(step)),
)
def dry_room_excursion(version: HoldRule, step: StepApplied) -> None:
    for excursion in _excursions_of(step):
        _hold_cells(version, excursion, [step.run.cell])
        # A lot the step consumed was open in the zone during the excursion too.
        for lot in sorted(step.lots.values(), key=lambda lot: lot.code):
            _hold_lot(version, excursion, lot)


def gather_again(excursion_id: int) -> list[Hold]:
    """After an excursion's count is committed: hold what it touched once every step that may
    have missed the count is committed (see the module's docstring). Call in a transaction of
    its own that holds no row a worker may wait for."""
    excursion = Excursion.objects.select_related("zone").get(pk=excursion_id)
    lock_names([zone_lock_name(excursion.zone)])
    version = in_force()
    if excursion.counted_at is None or version is None:
        return []
    return hold_exposed(version, excursion)


def in_force() -> HoldRule | None:
    return HoldRule.objects.filter(code=CODE, in_force=True).first()


def hold_exposed(version: HoldRule, excursion: Excursion) -> list[Hold]:
    """Hold what a counted excursion touched; idempotent (what is held already stays as it is, a
    cell or lot it missed before is added). Returns the holds it opened or added to."""
    stations = list(excursion.zone.stations.values_list("pk", flat=True))
    runs = ProcessRun.objects.filter(station_id__in=stations, finished_at__gte=excursion.started_at)
    if excursion.ended_at is not None:
        runs = runs.filter(
            Q(started_at__lte=excursion.ended_at)
            | Q(started_at__isnull=True, finished_at__lte=excursion.ended_at)
        )
    cells = Cell.objects.filter(pk__in=runs.values("cell_id")).order_by("pk")
    holds = [h for h in [_hold_cells(version, excursion, cells)] if h is not None]
    for lot in open_lots(excursion, stations):
        holds.append(_hold_lot(version, excursion, lot))
    return holds


def open_lots(excursion: Excursion, stations: Iterable[int]) -> list[MaterialLot]:
    """The lots open in the zone during the excursion (see the module's docstring)."""
    end = excursion.ended_at or excursion.last_beyond_at
    used_there = (
        Consumption.objects.filter(run__station_id__in=list(stations))
        .values("lot_id")
        .annotate(
            first=Min(Coalesce("run__started_at", "run__finished_at")),
            last=Max("run__finished_at"),
        )
        .filter(first__lte=end)
        .filter(Q(lot__status=MaterialLot.Status.RELEASED) | Q(last__gte=excursion.started_at))
    )
    return list(MaterialLot.objects.filter(pk__in=used_there.values("lot_id")).order_by("code"))


def _reason(excursion: Excursion) -> str:
    ended = (
        f"to {timezone.localtime(excursion.ended_at):%H:%M:%S}"
        if excursion.ended_at
        else "still going on"
    )
    return (
        f"Dry-room excursion {excursion.code}: {excursion.label.lower()} beyond "
        f"{excursion.bound} {excursion.limit:g} {excursion.unit} (peak {excursion.peak:g}) at "
        f"sensor {excursion.sensor} from {timezone.localtime(excursion.started_at):%Y-%m-%d %H:%M:%S} "
        f"{ended}, longer than the {excursion.zone.tolerated_s} s tolerated"
    )


def _hold_cells(version: HoldRule, excursion: Excursion, cells: Iterable[Cell]) -> Hold | None:
    """The excursion's hold of cells: opened with the first cell it holds, joined by later ones."""
    hold = open_hold_for(version, Hold.Scope.EXCURSION, excursion.code)
    cells = list(cells)
    if hold is None:
        if not cells:
            return None
        return open_hold(
            scope=Hold.Scope.EXCURSION,
            target=excursion.code,
            cells=cells,
            by=version.label,
            rule=version,
            reason=_reason(excursion),
        )
    held = set(hold.cells.values_list("pk", flat=True))
    joining = [c for c in cells if c.pk not in held and c.status != Cell.Status.SCRAPPED]
    if joining:
        hold.cells.add(*joining)
        for cell in joining:
            record_event(
                actor=version.label,
                verb="cell_joined_hold",
                subject_type="cell",
                subject=cell.serial,
                data={"hold": hold.pk, "scope": hold.scope, "target": hold.target},
            )
    return hold


def _hold_lot(version: HoldRule, excursion: Excursion, lot: MaterialLot) -> Hold:
    """A lot hold that stops the cells that consumed the lot (or a lot cut from it) since the
    excursion began, and every later consumer (they join a lot's open hold); material consumed
    earlier was not exposed (DOMAIN.md)."""
    if hold := open_hold_for(version, Hold.Scope.LOT, lot.code):
        return hold
    since = Consumption.objects.filter(
        lot_id__in=lot_and_descendant_ids([lot.pk]),
        run__finished_at__gte=excursion.started_at,
    ).values("cell_id")
    return open_hold(
        scope=Hold.Scope.LOT,
        target=lot.code,
        cells=Cell.objects.filter(pk__in=since).order_by("pk"),
        by=version.label,
        rule=version,
        lot=lot,
        reason=f"Open in the dry room during excursion {excursion.code}: {_reason(excursion)}",
    )
