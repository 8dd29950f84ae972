from __future__ import annotations

from django.contrib import admin

from stations.models import StationToken
from stations.services import revoke_station_token


@admin.action(description="Revoke the selected tokens")
def revoke_tokens(modeladmin, request, queryset) -> None:
    for token in queryset:
        revoke_station_token(token, by=request.user)


@admin.register(StationToken)
class StationTokenAdmin(admin.ModelAdmin):
    list_display = ("station", "prefix", "created_at", "revoked_at")
    list_filter = ("station__line", "revoked_at")
    readonly_fields = ("station", "key_hash", "prefix", "created_at", "revoked_at")
    actions = [revoke_tokens]

    def has_add_permission(self, request) -> bool:
        return False  # issued with `manage.py station_token`, which shows the token once
