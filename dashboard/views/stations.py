"""Station results not applied: the rejected and the still pending, and sending rejected ones again."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_POST

from core import roles
from dashboard.forms import (
    RequeueForm,
)
from dashboard.views.common import act, back_to, page_of, query_without_page
from lines.models import Station
from stations import intake
from stations import selectors as station_selectors

# ---------------------------------------------------------------- station results not applied

# The two lists' names on the page (station_selectors.UNAPPLIED's keys).
STATE_LABELS = {"rejected": gettext_lazy("Rejected"), "pending": gettext_lazy("Waiting")}


@roles.page_permission(roles.VIEW_STATION_RESULTS)
def unapplied_results(request: HttpRequest) -> HttpResponse:
    state = request.GET.get("state", "")
    state = state if state in station_selectors.UNAPPLIED else "rejected"
    line, station = request.GET.get("line", ""), request.GET.get("station", "")
    reason = request.GET.get("reason", "")
    results = station_selectors.unapplied_results(
        state=state, line=line, station=station, reason=reason
    )
    reasons = station_selectors.unapplied_reasons(state=state, line=line, station=station)
    choices = [(code, f"{code or _('queued')} ({count})") for code, count in reasons]
    if reason and reason not in dict(reasons):  # none lately, older ones listed
        choices.append((reason, reason))
    return render(
        request,
        "batches/unapplied_results.html",
        {
            "page": page_of(request, results),
            "query": query_without_page(request),
            "states": {
                key: STATE_LABELS.get(key, label)
                for key, label in station_selectors.UNAPPLIED.items()
            },
            "state": state,
            "reasons": reasons,
            "reason_choices": choices,
            "reason_days": station_selectors.REJECTED_REASONS_DAYS,
            "stations": Station.objects.order_by("line__code", "code"),
            "line_filter": line,
            "station_filter": station,
            "reason_filter": reason,
        },
    )


@roles.page_permission(roles.REQUEUE)
@require_POST
def requeue_results(request: HttpRequest) -> HttpResponse:
    form = RequeueForm(request.POST)
    return act(
        request,
        form,
        lambda data: intake.requeue_rejected(
            [entry.pk for entry in data["entries"]], by=request.user, reason=data["reason"]
        ),
        lambda sent: (
            ngettext(
                "%(count)d result sent to the workers again.",
                "%(count)d results sent to the workers again.",
                sent,
            )
            % {"count": sent}
        ),
        back_to(request, reverse("unapplied-results")),
    )
