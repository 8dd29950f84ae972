"""The equipment registry's figures: each item's usage (press cycles, fixture loads, results)
counted from the runs that name it, and one item's history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from batches.models import ProcessRun
from lines.models import Equipment, EquipmentCalibration, EquipmentStatusChange

DUE_SOON_DAYS = 30


def registry_items(
    *, kind: str = "", status: str = "", line: str = "", due_within: int | None = None
) -> QuerySet[Equipment]:
    """The registry, filtered, with each item's usage: its results, and its distinct press
    cycles or fixture loads (the `equipment` ids its results sent: one per vessel load or
    fixture load). A channel's usage counts its own results only."""
    items = Equipment.objects.select_related("station__line", "parent").annotate(
        results=Count("runs"),
        loads=Count("runs__equipment_ref", filter=~Q(runs__equipment_ref=""), distinct=True),
    )
    if kind:
        items = items.filter(kind=kind)
    if status:
        items = items.filter(status=status)
    if line:
        items = items.filter(station__line__code=line)
    if due_within is not None:
        items = items.filter(calibration_due__lte=timezone.localdate() + timedelta(days=due_within))
    return items.order_by("station__line__code", "station__code", "code")


def calibration_standing(due: date | None, *, within: int = DUE_SOON_DAYS) -> str:
    """overdue, due_soon, ok, or none for an item that needs no calibration."""
    if due is None:
        return "none"
    today = timezone.localdate()
    if due < today:
        return "overdue"
    return "due_soon" if due <= today + timedelta(days=within) else "ok"


@dataclass
class ItemHistory:
    runs: list[ProcessRun]
    status_changes: list[EquipmentStatusChange]
    calibrations: list[EquipmentCalibration]
    results: int
    loads: int


RUNS_SHOWN = 50


def item_history(item: Equipment) -> ItemHistory:
    runs = ProcessRun.objects.filter(equipment=item)
    counts = runs.aggregate(
        results=Count("id"),
        loads=Count("equipment_ref", filter=~Q(equipment_ref=""), distinct=True),
    )
    return ItemHistory(
        runs=list(
            runs.select_related("cell", "step", "station").order_by("-finished_at", "-id")[
                :RUNS_SHOWN
            ]
        ),
        status_changes=list(item.status_changes.select_related("by").order_by("-at", "-id")),
        calibrations=list(item.calibrations.select_related("by").order_by("-calibrated_at", "-id")),
        results=counts["results"],
        loads=counts["loads"],
    )
