from __future__ import annotations

from django.contrib import admin, messages

from audit.admin import AuditedAdmin
from batches.models import Batch, DesignMaterial, Hold, MaterialLot
from batches.services import hold_batch, hold_lot, set_lot_status, start_batch
from core.errors import DomainError
from lines.models import CellDesign


class DesignMaterialInline(admin.TabularInline):
    model = DesignMaterial
    extra = 0


@admin.register(CellDesign)
class CellDesignAdmin(AuditedAdmin):
    list_display = (
        "code",
        "name",
        "nominal_capacity_ah",
        "nominal_voltage_v",
        "layer_count",
        "target_mass_g",
    )
    search_fields = ("code", "name")
    inlines = [DesignMaterialInline]


def _run(modeladmin, request, queryset, action, label: str) -> None:
    for obj in queryset:
        try:
            action(obj)
        except DomainError as error:
            modeladmin.message_user(request, f"{obj}: {error.detail}", messages.ERROR)
        else:
            modeladmin.message_user(request, f"{obj}: {label}")


@admin.action(description="Hold the selected lots and every cell that consumed them")
def hold_lots(modeladmin, request, queryset) -> None:
    _run(
        modeladmin,
        request,
        queryset,
        lambda lot: hold_lot(lot, by=request.user, reason="Held from the admin"),
        "held",
    )


def _set_status(status: str, description: str):
    @admin.action(description=description)
    def action(modeladmin, request, queryset) -> None:
        _run(
            modeladmin,
            request,
            queryset,
            lambda lot: set_lot_status(lot, status, by=request.user, reason="Set in the admin"),
            f"now {MaterialLot.Status(status).label.lower()}",
        )

    action.__name__ = f"set_{status}"
    return action


@admin.register(MaterialLot)
class MaterialLotAdmin(AuditedAdmin):
    list_display = (
        "code",
        "role",
        "material",
        "supplier",
        "quantity",
        "unit",
        "unit_cost",
        "status",
        "received_at",
    )
    list_filter = ("role", "status", "supplier")
    search_fields = ("code", "supplier_lot", "material")
    raw_id_fields = ("parent",)
    actions = [
        hold_lots,
        _set_status(MaterialLot.Status.RELEASED, "Release the selected lots for use"),
        _set_status(MaterialLot.Status.QUARANTINE, "Quarantine the selected lots"),
        _set_status(MaterialLot.Status.REJECTED, "Reject the selected lots"),
        _set_status(MaterialLot.Status.CONSUMED, "Mark the selected lots used up"),
    ]

    def get_readonly_fields(self, request, obj=None):
        # A lot's status changes through its service (the actions), which checks the move
        # and records it; a new lot may start in any status (incoming inspection).
        return ("status",) if obj is not None else ()


@admin.action(description="Start the selected batches")
def start_batches(modeladmin, request, queryset) -> None:
    _run(
        modeladmin, request, queryset, lambda batch: start_batch(batch, by=request.user), "started"
    )


@admin.action(description="Hold the selected batches")
def hold_batches(modeladmin, request, queryset) -> None:
    _run(
        modeladmin,
        request,
        queryset,
        lambda batch: hold_batch(batch, by=request.user, reason="Held from the admin"),
        "held",
    )


@admin.register(Batch)
class BatchAdmin(admin.ModelAdmin):
    """Batches are planned through the dashboard or API (which create their cells); the admin
    lists them and runs transitions through the services."""

    list_display = ("code", "line", "design", "route", "planned_quantity", "status", "created_at")
    list_filter = ("line", "status", "design")
    search_fields = ("code",)
    readonly_fields = [f.name for f in Batch._meta.fields]
    actions = [start_batches, hold_batches]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(Hold)
class HoldAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "scope",
        "target",
        "status",
        "rule",
        "opened_by",
        "opened_at",
        "disposition",
    )
    list_filter = ("status", "scope", "disposition", "rule")
    search_fields = ("target", "reason")
    readonly_fields = [f.name for f in Hold._meta.fields]
    exclude = ("cells",)

    def has_add_permission(self, request) -> bool:
        return False  # holds open through the services (dashboard, API, rules)

    def has_change_permission(self, request, obj=None) -> bool:
        return False
