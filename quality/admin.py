from __future__ import annotations

from django import forms
from django.contrib import admin

from batches.models import HoldRule
from core.errors import DomainError
from quality.rules import rule_parameters
from quality.rules.registry import RULES
from quality.services import supersede_hold_rule


class HoldRuleForm(forms.ModelForm):
    """New thresholds for a rule: checked as the rule reads them; the note says why."""

    code = forms.ChoiceField(
        choices=lambda: [(code, f"{code}: {rule.label}") for code, rule in sorted(RULES.items())]
    )
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
    list_display = ("code", "version", "in_force", "parameters", "note", "created_at")
    list_filter = ("code", "in_force")

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj: HoldRule, form, change: bool) -> None:
        new = supersede_hold_rule(
            obj.code, parameters=obj.parameters, by=request.user, note=obj.note
        )
        obj.pk, obj.version, obj.in_force = new.pk, new.version, new.in_force
