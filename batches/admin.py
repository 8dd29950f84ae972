from __future__ import annotations

from django import forms
from django.contrib import admin, messages

from batches.models import (
    Batch,
    CellDesign,
    DesignMaterial,
    Hold,
    HoldRule,
    MaterialLot,
)
from batches.rules import rule_parameters, supersede_hold_rule
from batches.services import hold_batch, hold_lot, start_batch
from mes.errors import DomainError


class DesignMaterialInline(admin.TabularInline):
    model = DesignMaterial
    extra = 0


@admin.register(CellDesign)
class CellDesignAdmin(admin.ModelAdmin):
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


@admin.register(MaterialLot)
class MaterialLotAdmin(admin.ModelAdmin):
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
    actions = [hold_lots]


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


class HoldRuleForm(forms.ModelForm):
    """New thresholds for a rule: checked as the rule reads them; the note says why."""

    note = forms.CharField(widget=forms.Textarea, help_text="Why the thresholds change")

    class Meta:
        model = HoldRule
        fields = ("code", "parameters", "note")

    def clean(self) -> dict:
        data = super().clean()
        if "code" not in data or "parameters" not in data:
            return data  # the field's own error is shown
        if not isinstance(data["parameters"], dict):
            raise forms.ValidationError(
                {"parameters": 'An object of thresholds, e.g. {"failures": 3}.'}
            )
        try:
            data["parameters"] = rule_parameters(data["code"], data["parameters"])
        except DomainError as refused:
            raise forms.ValidationError({"parameters": list(refused.errors.values())}) from None
        return data


@admin.register(HoldRule)
class HoldRuleAdmin(admin.ModelAdmin):
    """Adding a rule puts its thresholds in force as the next version (supersede_hold_rule); a
    version is never changed or deleted: the holds it opened name it."""

    form = HoldRuleForm
    list_display = ("code", "version", "active", "parameters", "note", "created_at")
    list_filter = ("code", "active")

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj: HoldRule, form, change: bool) -> None:
        new = supersede_hold_rule(
            obj.code, parameters=obj.parameters, by=request.user, note=obj.note
        )
        obj.pk, obj.version, obj.active = new.pk, new.version, new.active
