from __future__ import annotations

from django.contrib import admin, messages

from audit.admin import AuditedAdmin
from core.errors import DomainError
from lines.models import (
    DayOff,
    DowntimeReason,
    Equipment,
    EquipmentCalibration,
    EquipmentStatusChange,
    Excursion,
    IdealCycleTime,
    Line,
    Recipe,
    RecipeParameter,
    RecipeVersion,
    Route,
    RouteStep,
    Shift,
    ShiftBreak,
    ShiftCalendar,
    Station,
    StationStateChange,
    StopReasonCorrection,
    Zone,
)
from lines.performance import write_default_calendar
from lines.services import release_recipe_version


class StationInline(admin.TabularInline):
    model = Station
    fields = ("code", "name", "kind", "state", "state_since")
    readonly_fields = ("state", "state_since")  # changed only through the station API / service
    extra = 0


@admin.action(description="Give the selected lines a calendar of their own (the default, to edit)")
def write_calendars(modeladmin, request, queryset) -> None:
    for line in queryset:
        try:
            write_default_calendar(line, by=request.user)
        except DomainError as error:
            modeladmin.message_user(request, f"{line}: {error.detail}", messages.ERROR)


@admin.register(Line)
class LineAdmin(AuditedAdmin):
    list_display = ("code", "name", "site", "process_cost_per_cell", "currency")
    search_fields = ("code", "name", "site")
    inlines = [StationInline]
    actions = [write_calendars]


@admin.register(Station)
class StationAdmin(AuditedAdmin):
    list_display = ("code", "name", "line", "kind", "state", "state_since")
    list_filter = ("line", "kind", "state")
    search_fields = ("code", "name")
    readonly_fields = ("state", "state_since")


@admin.register(StationStateChange)
class StationStateChangeAdmin(admin.ModelAdmin):
    list_display = ("station", "state", "reason", "occurred_at", "recorded_at")
    list_filter = ("state", "station__line", "station")
    date_hierarchy = "occurred_at"

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Equipment)
class EquipmentAdmin(AuditedAdmin):
    list_display = ("code", "station", "kind", "parent", "status", "calibration_due", "active")
    list_filter = ("kind", "status", "active", "station__line")
    search_fields = ("code",)
    # Locked out, returned and calibrated through their services (the registry's pages), each
    # with its reason and event.
    readonly_fields = ("status",)


class RouteStepInline(admin.TabularInline):
    model = RouteStep
    extra = 0


@admin.register(Route)
class RouteAdmin(AuditedAdmin):
    list_display = ("code", "name", "line")
    list_filter = ("line",)
    inlines = [RouteStepInline]


class RecipeParameterInline(admin.TabularInline):
    model = RecipeParameter
    extra = 0

    def has_change_permission(self, request, obj=None) -> bool:
        return obj is None or obj.status == RecipeVersion.Status.DRAFT

    has_add_permission = has_change_permission
    has_delete_permission = has_change_permission


@admin.register(Recipe)
class RecipeAdmin(AuditedAdmin):
    list_display = ("name", "line", "station_kind")
    list_filter = ("line", "station_kind")


@admin.action(description="Release the selected drafts (supersedes the active version)")
def release_versions(modeladmin, request, queryset) -> None:
    for version in queryset:
        try:
            release_recipe_version(version, by=request.user)
        except DomainError as error:
            modeladmin.message_user(request, f"{version}: {error.detail}", messages.ERROR)


@admin.register(RecipeVersion)
class RecipeVersionAdmin(AuditedAdmin):
    list_display = ("recipe", "version", "status", "released_at", "released_by", "note")
    list_filter = ("status", "recipe__line", "recipe__station_kind")
    readonly_fields = ("status", "released_at", "released_by", "created_at")
    inlines = [RecipeParameterInline]
    actions = [release_versions]

    def has_change_permission(self, request, obj=None) -> bool:
        # A released version is immutable (the database enforces it too).
        return obj is None or obj.status == RecipeVersion.Status.DRAFT

    def has_delete_permission(self, request, obj=None) -> bool:
        return obj is None or obj.status == RecipeVersion.Status.DRAFT


# ---------------------------------------------------------------- line performance


class ShiftBreakInline(admin.TabularInline):
    model = ShiftBreak
    extra = 0


@admin.register(Shift)
class ShiftAdmin(AuditedAdmin):
    list_display = ("calendar", "name", "weekday", "start", "end")
    list_filter = ("calendar__line",)
    inlines = [ShiftBreakInline]

    def has_delete_permission(self, request, obj=None) -> bool:
        return True  # planned time ahead, not history: the OEE reads the calendar as it is


class ShiftInline(admin.TabularInline):
    model = Shift
    extra = 0
    show_change_link = True  # its breaks are edited on the shift's own page


@admin.register(ShiftCalendar)
class ShiftCalendarAdmin(AuditedAdmin):
    list_display = ("line", "time_zone", "public_holidays", "year_end_off")
    inlines = [ShiftInline]


@admin.register(DayOff)
class DayOffAdmin(AuditedAdmin):
    list_display = ("line", "date", "reason")
    list_filter = ("line",)
    date_hierarchy = "date"

    def has_delete_permission(self, request, obj=None) -> bool:
        return True


@admin.register(DowntimeReason)
class DowntimeReasonAdmin(AuditedAdmin):
    list_display = ("code", "label", "category")
    list_filter = ("category",)
    search_fields = ("code", "label")


class _AppendOnlyAdmin(admin.ModelAdmin):
    """Rows written by their services only (each with its event): read here, never edited."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(StopReasonCorrection)
class StopReasonCorrectionAdmin(_AppendOnlyAdmin):
    list_display = ("state_change", "reason", "note", "corrected_by", "corrected_at")


@admin.register(IdealCycleTime)
class IdealCycleTimeAdmin(_AppendOnlyAdmin):
    list_display = ("recipe_version", "ideal_cycle_s", "set_by", "set_at")


@admin.register(EquipmentStatusChange)
class EquipmentStatusChangeAdmin(_AppendOnlyAdmin):
    list_display = ("equipment", "status", "reason", "by", "at")


@admin.register(EquipmentCalibration)
class EquipmentCalibrationAdmin(_AppendOnlyAdmin):
    list_display = ("equipment", "calibrated_at", "due", "note", "by")


# ---------------------------------------------------------------- dry-room zones


@admin.register(Zone)
class ZoneAdmin(AuditedAdmin):
    list_display = ("code", "name", "line", "tolerated_s")
    list_filter = ("line",)
    search_fields = ("code", "name")
    filter_horizontal = ("stations",)


@admin.register(Excursion)
class ExcursionAdmin(admin.ModelAdmin):
    """Excursions are judged from the readings (environment/), never edited."""

    list_display = ("zone", "sensor", "quantity", "started_at", "ended_at", "peak", "counted_at")
    list_filter = ("zone", "quantity")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
