"""Master data edited in the admin leaves its event like every other change: who, what, which
fields from what to what, in the same transaction as the edit."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Model, QuerySet
from django.http import HttpRequest

from audit.services import record_event


def _shown(value: Any) -> Any:
    """A field's value as the trail keeps it (JSON): numbers and text as they are, others as text."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


class AuditedAdmin(admin.ModelAdmin):
    """A ModelAdmin whose adds, changes and deletions are recorded in the audit trail. Master
    data that history points at is not deleted (the runtime database role may not): an admin
    that allows it for some rows (draft recipe versions) says so itself."""

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def _subject(self, obj: Model) -> tuple[str, str]:
        return obj._meta.model_name, str(getattr(obj, "code", None) or obj.pk)

    def save_model(self, request: HttpRequest, obj: Model, form: Any, change: bool) -> None:
        changes = {
            name: {
                "from": _shown(form.initial.get(name)),
                "to": _shown(form.cleaned_data.get(name)),
            }
            for name in form.changed_data
        }
        super().save_model(request, obj, form, change)
        subject_type, subject = self._subject(obj)
        record_event(
            actor=request.user,
            verb="master_data_changed" if change else "master_data_added",
            subject_type=subject_type,
            subject=subject,
            data={"fields": changes},
        )

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        """Inline rows (a route's steps, a version's parameters, a design's materials)."""
        super().save_formset(request, form, formset, change)
        parent_type, parent = self._subject(form.instance)
        rows = [("added", obj, {}) for obj in formset.new_objects]
        rows += [("changed", obj, fields) for obj, fields in formset.changed_objects]
        rows += [("deleted", obj, {}) for obj in formset.deleted_objects]
        for what, obj, fields in rows:
            record_event(
                actor=request.user,
                verb=f"master_data_{what}",
                subject_type=parent_type,
                subject=parent,
                data={"row": obj._meta.model_name, "value": str(obj), "fields": list(fields)},
            )

    def delete_model(self, request: HttpRequest, obj: Model) -> None:
        subject_type, subject = self._subject(obj)
        super().delete_model(request, obj)
        record_event(
            actor=request.user,
            verb="master_data_deleted",
            subject_type=subject_type,
            subject=subject,
        )

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for obj in queryset:
            self.delete_model(request, obj)
