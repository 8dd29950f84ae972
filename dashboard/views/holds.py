"""The holds queue with its dispositions, and the hold rules' thresholds."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from batches import selectors
from batches.models import Hold
from batches.services import plan_disposition, request_release
from core import roles
from core.errors import DomainError
from dashboard.forms import (
    DispositionForm,
    ThresholdsForm,
    first_error,
)
from dashboard.views.common import back_to, page_of, query_without_page
from lines.models import StationKind
from quality import selectors as quality_selectors
from quality.rules import rule_thresholds
from quality.rules.registry import RULES
from quality.services import supersede_hold_rule

# ---------------------------------------------------------------- holds


@roles.page_permission(roles.VIEW_HOLDS)
def hold_queue(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status", Hold.Status.OPEN)
    if status not in Hold.Status.values:
        status = ""
    return render(
        request,
        "batches/hold_queue.html",
        {
            "page": page_of(request, selectors.holds_list(status=status)),
            "query": query_without_page(request),
            "status_filter": status,
            **_choices(),
        },
    )


@roles.page_permission(roles.VIEW_HOLDS)
def hold_rules(request: HttpRequest) -> HttpResponse:
    return render(
        request, "batches/hold_rules.html", {"histories": quality_selectors.hold_rule_histories()}
    )


@roles.page_permission(roles.SET_HOLD_RULES)
@require_POST
def hold_rule_supersede(request: HttpRequest, code: str) -> HttpResponse:
    """New thresholds for a rule. Refused, the page comes back with the error beside that rule's
    form and the values as typed, not at the top of a long page over an emptied form."""
    if code not in RULES:
        raise Http404(f"No hold rule {code}")
    form = ThresholdsForm(request.POST, thresholds=rule_thresholds(code))
    error = first_error(form) if not form.is_valid() else ""
    if not error:
        try:
            new = supersede_hold_rule(
                code,
                parameters=form.parameters(),
                by=request.user,
                note=form.cleaned_data["reason"],
            )
        except DomainError as refused:
            fields = " ".join(f"{name}: {problem}" for name, problem in refused.errors.items())
            error = f"{refused.detail} {fields}".strip()
        else:
            messages.success(
                request,
                _("%(rule)s v%(version)s is in force.") % {"rule": code, "version": new.version},
            )
            return redirect(f"{reverse('hold-rules')}#rule-{code}")
    return render(
        request,
        "batches/hold_rules.html",
        {
            "histories": quality_selectors.hold_rule_histories(),
            "refused": {"code": code, "error": error, "values": request.POST},
        },
        status=400,
    )


@roles.page_permission(roles.DISPOSITION)
@require_POST
def hold_disposition(request: HttpRequest, pk: int) -> HttpResponse:
    """Close a hold with a disposition, in two steps: asked, the page answers with what it will
    do (how many cells go back to which step, go on or are scrapped); confirmed, it is done.
    From the queue (htmx) it answers with the hold's row; from a page it redirects back."""
    hold = get_object_or_404(Hold, pk=pk)
    form = DispositionForm(request.POST, hold=hold)
    error, plan = "", None
    if not form.is_valid():
        error = first_error(form)
    else:
        asked = form.cleaned_data
        try:
            if asked["confirm"]:
                hold = request_release(
                    hold,
                    by=request.user,
                    disposition=asked["disposition"],
                    reason=asked["reason"],
                    rework_at=asked["rework_at"],
                )
            else:
                plan = plan_disposition(
                    hold, disposition=asked["disposition"], rework_at=asked["rework_at"]
                )
        except DomainError as refused:
            error = refused.detail
    if request.headers.get("HX-Request"):
        hold = selectors.holds_with_details(Hold.objects.filter(pk=pk)).get()
        return render(
            request,
            "batches/_hold_row.html",
            # 200 even with an error: htmx swaps only successful responses into the row.
            {"hold": hold, "error": error, "plan": plan, "asked": form.data, **_choices()},
        )
    if plan is not None:
        return render(
            request,
            "batches/disposition_confirm.html",
            {"hold": hold, "plan": plan, "asked": form.data, "next": back_to(request, "")},
        )
    if error:
        messages.error(request, error)
    elif hold.closing:
        messages.success(
            request,
            _(
                "Hold %(hold)s: %(disposition)s of %(cells)s cells under way in a worker; its "
                "cells stay held until it is done."
            )
            % {
                "hold": hold.pk,
                "disposition": hold.closing["disposition"],
                "cells": hold.closing["cells"],
            },
        )
    else:
        messages.success(
            request,
            _("Hold %(hold)s closed: %(disposition)s.")
            % {
                "hold": hold.pk,
                "disposition": str(
                    Hold.Disposition(form.cleaned_data["disposition"]).label
                ).lower(),
            },
        )
    return redirect(back_to(request, reverse("holds")))


def _choices() -> dict:
    """What the disposition form offers: the dispositions and the steps a rework may go back to."""
    return {"dispositions": Hold.Disposition.choices, "steps": StationKind.choices}


@roles.page_permission(roles.VIEW_HOLDS)
def hold_row(request: HttpRequest, pk: int) -> HttpResponse:
    """A hold's row of the queue, re-fetched while a worker closes it."""
    hold = get_object_or_404(selectors.holds_with_details(Hold.objects.filter(pk=pk)))
    return render(
        request,
        "batches/_hold_row.html",
        {"hold": hold, **_choices()},
    )
