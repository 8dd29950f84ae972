"""SPC pages: the control chart of one parameter (with the filters, the signals, the holds the
spc_signal rule opened and, for quality, freezing its limits) and the capability summary of a
line's steps."""

from __future__ import annotations

from urllib.parse import urlencode

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.html import json_script
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from core import roles
from core.errors import DomainError
from core.renderers import FastJSONEncoder
from dashboard.views.common import act, back_to
from lines import display
from lines.models import Line, Station, StationKind
from quality.selection import Selection
from quality.spc import statistics
from quality.spc.api import chart_from_query, chart_reply
from quality.spc.selectors import rules_of, spc_holds, step_capability
from quality.spc.services import freeze_baseline, set_spc_setting


class FreezeForm(forms.Form):
    line = forms.ModelChoiceField(Line.objects.all(), to_field_name="code")
    step = forms.ChoiceField(choices=StationKind.choices)
    parameter = forms.SlugField(max_length=60)
    chart = forms.ChoiceField(choices=[(c, c) for c in statistics.CHARTS])
    subgroup = forms.CharField(max_length=20, required=False)
    since = forms.DateTimeField()
    until = forms.DateTimeField()
    note = forms.CharField(max_length=2000, strip=True)


class SettingsForm(forms.Form):
    line = forms.ModelChoiceField(Line.objects.all(), to_field_name="code")
    step = forms.ChoiceField(choices=StationKind.choices)
    parameter = forms.SlugField(max_length=60)
    rules = forms.TypedMultipleChoiceField(
        choices=[(n, n) for n in statistics.NELSON_RULES], coerce=int, required=False
    )
    hold = forms.BooleanField(required=False)
    note = forms.CharField(max_length=2000, strip=True)


@roles.page_permission(roles.VIEW_BATCHES)
def spc_chart_page(request: HttpRequest) -> HttpResponse:
    """/quality/spc/?line=&step=&parameter=[&chart=&subgroup=&filters]: the chart, or the form
    with what is wrong in the query."""
    query = request.GET
    context: dict = {
        "query": query,
        "lines": Line.objects.all(),
        "steps": StationKind.choices,
        "charts": statistics.CHARTS,
        "rules": statistics.NELSON_RULES,
    }
    status = 200
    if query.get("step") and query.get("parameter"):
        try:
            spc = chart_from_query(query)
        except DomainError as error:
            status = error.status
            context["error"] = error
        else:
            reply = chart_reply(spc)
            reply["cell_url"] = reverse("cell", args=["SERIAL"])
            context.update(
                spc=spc,
                reply=reply,
                reply_script=json_script(reply, "spc-data", encoder=FastJSONEncoder),
                holds=spc_holds(spc.selection, spc.parameter),
                signalled=sum(1 for p in reply["points"] if p["signals"]),
                judged=rules_of(spc.setting),
            )
    return render(request, "quality/spc_chart.html", context, status=status)


@roles.page_permission(roles.FREEZE_SPC_BASELINE)
@require_POST
def spc_freeze(request: HttpRequest) -> HttpResponse:
    form = FreezeForm(request.POST)
    back = back_to(request, reverse("spc-chart"))

    def freeze(data: dict):
        return freeze_baseline(by=request.user, **data)

    def done(baseline) -> str:
        return _(
            "Froze %(parameter)s limits as baseline v%(version)s: center %(center)s, sigma "
            "within %(sigma)s from %(n)s values."
        ) % {
            "parameter": display.label(baseline.parameter),
            "version": baseline.version,
            "center": f"{baseline.center:.6g}",
            "sigma": f"{baseline.sigma_within:.4g}",
            "n": baseline.n,
        }

    return act(request, form, _refusing_value_errors(freeze), done, back)


@roles.page_permission(roles.SET_HOLD_RULES)
@require_POST
def spc_settings(request: HttpRequest) -> HttpResponse:
    """Which of Nelson's rules a parameter is judged by, and whether a signal holds the cell."""
    form = SettingsForm(request.POST)

    def done(setting) -> str:
        judged = ", ".join(str(r) for r in setting.rules) or _("none")
        effect = _("hold the cell") if setting.hold else _("flag")
        return _("%(parameter)s: rules %(rules)s; signals %(effect)s (settings v%(version)s).") % {
            "parameter": display.label(setting.parameter),
            "rules": judged,
            "effect": effect,
            "version": setting.version,
        }

    return act(
        request,
        form,
        lambda data: set_spc_setting(by=request.user, **data),
        done,
        back_to(request, reverse("spc-chart")),
    )


def _refusing_value_errors(action):
    """A subgroup X-bar cannot take is a refusal like any other, not a server error."""

    def run(data: dict):
        try:
            return action(data)
        except ValueError as error:
            raise DomainError("invalid", str(error), status=400) from None

    return run


@roles.page_permission(roles.VIEW_BATCHES)
def spc_capability(request: HttpRequest, code: str) -> HttpResponse:
    """/quality/spc/capability/<line>/[?step=&since=&until=]: every judged parameter of each step
    of the line (or the step asked for), worst Cpk first, each linking to its chart."""
    line = get_object_or_404(Line, code=code)
    kinds = set(Station.objects.filter(line=line).values_list("kind", flat=True))
    asked = request.GET.get("step", "")
    steps = [k for k in StationKind.values if k in kinds and (not asked or k == asked)]
    window = {k: v for k, v in request.GET.items() if k in ("since", "until") and v}
    sections, error = [], None
    for step in steps:
        selection, errors = Selection.from_query({"line": line.code, "step": step, **window})
        if errors:
            error = "; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items())
            break
        rows = step_capability(selection)
        for row in rows:
            row.url = (
                reverse("spc-chart")
                + "?"
                + urlencode({"line": line.code, "step": step, "parameter": row.parameter, **window})
            )
        sections.append((StationKind(step).label, step, rows))
    return render(
        request,
        "quality/spc_capability.html",
        {
            "line": line,
            "sections": sections,
            "steps": [(k, StationKind(k).label) for k in StationKind.values if k in kinds],
            "asked": asked,
            "window": window,
            "error": error,
        },
        status=400 if error else 200,
    )
