"""Forms of the dashboard's actions: each only validates input; the views call the services."""

from __future__ import annotations

from collections.abc import Mapping

from django import forms
from django.utils.translation import gettext_lazy as _

from batches.models import Hold, MaterialLot
from lines.models import RouteStep, StationKind
from stations.models import InboxEntry


class ReasonForm(forms.Form):
    """Hold or scrap: every action on cells records why (the audit trail needs it)."""

    reason = forms.CharField(max_length=1000, strip=True, label=_("reason"))


class DispositionForm(ReasonForm):
    """A disposition, asked for first, then confirmed once the page has said what it will do."""

    disposition = forms.ChoiceField(choices=Hold.Disposition.choices, label=_("disposition"))
    rework_at = forms.ChoiceField(
        choices=[("", _("the failed step")), *StationKind.choices],
        required=False,
        label=_("step to rework at"),
    )
    confirm = forms.BooleanField(required=False)

    def __init__(self, *args, hold: Hold, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.hold = hold

    def clean(self) -> dict:
        data = super().clean()
        rework = data.get("disposition") == Hold.Disposition.REWORK
        if rework and not data.get("rework_at") and not self.hold.found_at:
            # No failed step to default to (a hold opened by hand): the engineer says.
            self.add_error("rework_at", _("Choose the step the cells go back to."))
        return data


class LotStatusForm(ReasonForm):
    status = forms.ChoiceField(choices=MaterialLot.Status.choices, label=_("status"))


class ReworkForm(ReasonForm):
    step = forms.ModelChoiceField(
        queryset=RouteStep.objects.none(), to_field_name="station_kind", label=_("step")
    )

    def __init__(self, *args, route_steps, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["step"].queryset = route_steps


class RequeueForm(ReasonForm):
    """Rejected station results to send to the workers again (the service takes only those
    still rejected)."""

    entries = forms.ModelMultipleChoiceField(
        queryset=InboxEntry.objects.only("id"), label=_("results to send again")
    )


class ThresholdsForm(ReasonForm):
    """New thresholds for one rule: a field per threshold it reads; one left empty takes the
    rule's default. The service checks the values as the rule reads them."""

    def __init__(self, *args, thresholds: Mapping[str, type], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for name, kind in thresholds.items():
            field = forms.IntegerField if kind is int else forms.FloatField
            self.fields[name] = field(required=False)
        self.thresholds = list(thresholds)

    def parameters(self) -> dict[str, int | float]:
        return {
            name: self.cleaned_data[name]
            for name in self.thresholds
            if self.cleaned_data[name] is not None
        }


def first_error(form: forms.Form) -> str:
    """One readable sentence for a flash message: 'reason: This field is required.', the field
    named by its label in the page's language (its words where it has none)."""
    for name, errors in form.errors.items():
        if name == "__all__":
            return errors[0]
        field = form.fields.get(name)
        label = field.label if field is not None and field.label else name.replace("_", " ")
        return f"{label}: {errors[0]}"
    return str(_("The form is not valid."))
