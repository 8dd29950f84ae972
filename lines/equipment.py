"""The equipment registry: which registered item a result names, and the services that lock an
item out, return it to service, retire it and record its calibrations (each with its event)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from django.db import transaction
from django.db.models import Prefetch
from django.utils import timezone
from django.utils.translation import gettext as _

from audit.services import record_event
from core.errors import DomainError, check_transition, require_reason
from lines.models import Equipment, EquipmentCalibration, EquipmentStatusChange, Station

# What may follow a registered code in a press-cycle or load id that starts with it
# ("PR-CIP-1-261130-0004" is a load of vessel PR-CIP-1).
_SEPARATORS = "-:/#_."


def registry() -> list[Equipment]:
    """Every registered item with its status changes and calibrations (three queries), for
    Equipment.unusable_reason: a plant registers hundreds of items, not millions, so the step
    engine reads them all once per chunk of results rather than once per result."""
    items = list(
        Equipment.objects.prefetch_related(
            Prefetch("status_changes", queryset=EquipmentStatusChange.objects.order_by("at", "id")),
            Prefetch(
                "calibrations", queryset=EquipmentCalibration.objects.order_by("calibrated_at")
            ),
        )
    )
    by_id = {item.pk: item for item in items}
    for item in items:
        if item.parent_id is not None:
            item.parent = by_id[item.parent_id]  # a channel reads its fixture's state, no query
    return items


def named_item(
    items: Iterable[Equipment], station: Station, *, equipment: str, fixture: str, channel: str
) -> Equipment | None:
    """The registered item a result names: its channel, else its fixture, else its `equipment`
    (a registered code, or a press-cycle or load id starting with a code of the station's own
    items); None when it names nothing registered."""
    by_code = {item.code: item for item in items}
    for code in (channel, fixture, equipment):
        if code and code in by_code:
            return by_code[code]
    if equipment:
        own = [
            item
            for item in by_code.values()
            if item.station_id == station.pk
            and equipment.startswith(item.code)
            and equipment[len(item.code) : len(item.code) + 1] in tuple(_SEPARATORS)
        ]
        if own:
            return max(own, key=lambda item: len(item.code))
    return None


def _set_status(item: Equipment, status: str, *, by: Any, reason: str, verb: str) -> Equipment:
    require_reason(reason)
    item = Equipment.objects.select_for_update().get(pk=item.pk)
    check_transition(Equipment, item.status, status)
    was = item.status
    item.status = status
    item.save(update_fields=["status"])
    EquipmentStatusChange.objects.create(
        equipment=item, status=status, reason=reason, by=by, at=timezone.now()
    )
    record_event(
        actor=by,
        verb=verb,
        subject_type="equipment",
        subject=item.code,
        reason=reason,
        data={"from": was, "to": status},
    )
    return item


@transaction.atomic
def lock_out(item: Equipment, *, by: Any, reason: str) -> Equipment:
    """Take an item out of use (a channel that reads wrong): results that use it from now on
    hold their cells (equipment_unusable)."""
    return _set_status(
        item, Equipment.Status.LOCKED_OUT, by=by, reason=reason, verb="equipment_locked_out"
    )


@transaction.atomic
def return_to_service(item: Equipment, *, by: Any, reason: str) -> Equipment:
    return _set_status(
        item, Equipment.Status.IN_SERVICE, by=by, reason=reason, verb="equipment_returned"
    )


@transaction.atomic
def retire(item: Equipment, *, by: Any, reason: str) -> Equipment:
    return _set_status(
        item, Equipment.Status.RETIRED, by=by, reason=reason, verb="equipment_retired"
    )


@transaction.atomic
def record_calibration(
    item: Equipment, *, due: date, by: Any, calibrated_at: datetime | None = None, note: str = ""
) -> EquipmentCalibration:
    calibrated_at = calibrated_at or timezone.now()
    if due < timezone.localtime(calibrated_at).date():
        raise DomainError(
            "invalid",
            _("The next calibration cannot be due before this one."),
            errors={"due": ["On or after the calibration's date."]},
            status=400,
        )
    item = Equipment.objects.select_for_update().get(pk=item.pk)
    calibration = EquipmentCalibration.objects.create(
        equipment=item, calibrated_at=calibrated_at, due=due, note=note, by=by
    )
    item.calibration_due = due
    item.save(update_fields=["calibration_due"])
    record_event(
        actor=by,
        verb="equipment_calibrated",
        subject_type="equipment",
        subject=item.code,
        reason=note,
        data={"calibrated_at": calibrated_at.isoformat(), "due": due.isoformat()},
    )
    return calibration
