"""Dashboard pages of batches, cells, lots and holds: read through selectors, act through services.

Every view checks a permission from mes.roles (anonymous: to the sign-in page; signed in without
the permission: 403); every action is a POST with a required reason that calls one service.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.core.paginator import Page, Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from batches import ingestion, selectors
from batches.energy import TARGET_AFTER, TARGET_FY2028, batch_economics
from batches.forms import (
    DispositionForm,
    ReasonForm,
    RequeueForm,
    ReworkForm,
    ThresholdsForm,
    first_error,
)
from batches.models import Batch, Cell, Hold, HoldRule, MaterialLot, MaterialRole
from batches.rules import rule_thresholds, supersede_hold_rule
from batches.services import (
    hold_batch,
    hold_cell,
    hold_lot,
    release_hold,
    rework_cell,
    scrap_cell,
)
from lines.models import Line, Station
from mes import roles
from mes.errors import DomainError

CELLS_PER_PAGE = 50
LABELS_PER_SHEET = 40  # 5 x 8 labels on an A4 sheet
LIST_PAGE = 50


def _page(request: HttpRequest, items: Any, per_page: int = LIST_PAGE) -> Page:
    return Paginator(items, per_page).get_page(request.GET.get("page"))


def _query_without_page(request: HttpRequest) -> str:
    """The current filters, for pagination links that keep them."""
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()


def _back(request: HttpRequest, default: str) -> str:
    """Where a form posted from a page returns: its `next` if it is one of ours."""
    back = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        return back
    return default


def _act(
    request: HttpRequest,
    form: Any,
    action: Callable[[dict], Any],
    done: str | Callable[[Any], str],
    back: str,
) -> HttpResponseRedirect:
    """Validate the form, call the service, flash what happened (`done`, or `done` of what the
    service returned) and go back (post/redirect/get)."""
    if not form.is_valid():
        messages.error(request, first_error(form))
    else:
        try:
            result = action(form.cleaned_data)
        except DomainError as error:
            fields = " ".join(f"{name}: {problem}" for name, problem in error.errors.items())
            messages.error(request, f"{error.detail} {fields}".strip())
        else:
            messages.success(request, done(result) if callable(done) else done)
    return redirect(back)


# ---------------------------------------------------------------- batches


@roles.page_permission(roles.VIEW_BATCHES)
def batch_list(request: HttpRequest) -> HttpResponse:
    line, status = request.GET.get("line", ""), request.GET.get("status", "")
    batches = selectors.batch_list(line=line, status=status)
    return render(
        request,
        "batches/batch_list.html",
        {
            "page": _page(request, batches),
            "query": _query_without_page(request),
            "lines": Line.objects.all(),
            "statuses": Batch.Status.choices,
            "line_filter": line,
            "status_filter": status,
        },
    )


@roles.page_permission(roles.VIEW_BATCHES)
def batch_detail(request: HttpRequest, code: str) -> HttpResponse:
    try:
        batch = selectors.batch_detail(code)
    except Batch.DoesNotExist:
        raise Http404(f"No batch {code}") from None
    filters = {name: request.GET.get(name, "") for name in ("status", "step", "grade")}
    cells = selectors.batch_cells(batch, **filters)
    holds = list(selectors.holds_of_batch(batch))
    return render(
        request,
        "batches/batch_detail.html",
        {
            "batch": batch,
            "progress": selectors.progress_of([batch])[0],
            "page": _page(request, cells, CELLS_PER_PAGE),
            "query": _query_without_page(request),
            "filters": filters,
            "cell_statuses": [*Cell.Status.choices, ("on_hold", "On hold")],
            "grades": selectors.grades_of(batch),
            "holds": holds,
            "open_holds": [h for h in holds if h.status == Hold.Status.OPEN],
            "timeline": selectors.batch_timeline(batch, holds),
            "dispositions": Hold.Disposition.choices,
            "economics": batch_economics(batch),
            "targets": (TARGET_FY2028, TARGET_AFTER),
        },
    )


@roles.page_permission(roles.HOLD)
@require_POST
def batch_hold(request: HttpRequest, code: str) -> HttpResponse:
    batch = get_object_or_404(Batch, code=code)
    return _act(
        request,
        ReasonForm(request.POST),
        lambda data: hold_batch(batch, by=request.user, reason=data["reason"]),
        f"Batch {batch.code} is on hold: none of its cells can be tracked in.",
        reverse("batch", args=[batch.code]),
    )


@roles.page_permission(roles.VIEW_BATCHES)
def batch_labels(request: HttpRequest, code: str) -> HttpResponse:
    batch = get_object_or_404(Batch.objects.select_related("design", "line"), code=code)
    cells = batch.cells.order_by("position").only("serial", "position", "batch_id")
    return render(
        request,
        "batches/labels.html",
        {"batch": batch, "page": _page(request, cells, LABELS_PER_SHEET)},
    )


# ---------------------------------------------------------------- cells


@roles.page_permission(roles.VIEW_CELLS)
def cell_detail(request: HttpRequest, serial: str) -> HttpResponse:
    try:
        cell = selectors.cell_detail(serial)
    except Cell.DoesNotExist:
        raise Http404(f"No cell {serial}") from None
    runs = selectors.runs_of(cell)
    charts = [selectors.curve_chart(curve) for run in runs for curve in run.curves.all()]
    return render(
        request,
        "batches/cell_detail.html",
        {
            "cell": cell,
            "state": selectors.cell_state(cell),
            "genealogy": selectors.genealogy_of(cell),
            "runs": runs,
            "charts": charts,
            "holds": selectors.holds_of_cell(cell),
            "events": selectors.cell_events(cell),
            "route_steps": cell.batch.route.steps.all(),
        },
    )


def _cell(serial: str) -> Cell:
    return get_object_or_404(Cell.objects.select_related("batch__route"), serial=serial)


@roles.page_permission(roles.HOLD)
@require_POST
def cell_hold(request: HttpRequest, serial: str) -> HttpResponse:
    cell = _cell(serial)
    return _act(
        request,
        ReasonForm(request.POST),
        lambda data: hold_cell(cell, by=request.user, reason=data["reason"]),
        f"Cell {cell.serial} is on hold.",
        reverse("cell", args=[cell.serial]),
    )


@roles.page_permission(roles.DISPOSITION)
@require_POST
def cell_scrap(request: HttpRequest, serial: str) -> HttpResponse:
    cell = _cell(serial)
    return _act(
        request,
        ReasonForm(request.POST),
        lambda data: scrap_cell(cell, by=request.user, reason=data["reason"]),
        f"Cell {cell.serial} is scrapped.",
        reverse("cell", args=[cell.serial]),
    )


@roles.page_permission(roles.DISPOSITION)
@require_POST
def cell_rework(request: HttpRequest, serial: str) -> HttpResponse:
    cell = _cell(serial)
    form = ReworkForm(request.POST, route_steps=cell.batch.route.steps.all())
    return _act(
        request,
        form,
        lambda data: rework_cell(cell, step=data["step"], by=request.user, reason=data["reason"]),
        f"Cell {cell.serial} goes back to {form.cleaned_data.get('step') if form.is_valid() else ''}.",
        reverse("cell", args=[cell.serial]),
    )


# ---------------------------------------------------------------- lots


@roles.page_permission(roles.VIEW_LOTS)
def lot_list(request: HttpRequest) -> HttpResponse:
    role, status = request.GET.get("role", ""), request.GET.get("status", "")
    return render(
        request,
        "batches/lot_list.html",
        {
            "page": _page(request, selectors.lot_list(role=role, status=status)),
            "query": _query_without_page(request),
            "roles": MaterialRole.choices,
            "statuses": MaterialLot.Status.choices,
            "role_filter": role,
            "status_filter": status,
        },
    )


@roles.page_permission(roles.VIEW_LOTS)
def lot_detail(request: HttpRequest, code: str) -> HttpResponse:
    try:
        lot = selectors.lot_detail(code)
    except MaterialLot.DoesNotExist:
        raise Http404(f"No lot {code}") from None
    return render(
        request,
        "batches/lot_detail.html",
        {
            "lot": lot,
            "children": lot.children.order_by("code"),
            "counts": selectors.lot_consumer_counts(lot),
            "page": _page(request, selectors.lot_consumers(lot), CELLS_PER_PAGE),
            "query": _query_without_page(request),
            "holds": selectors.holds_with_details(lot.holds.all()).order_by("-opened_at"),
        },
    )


@roles.page_permission(roles.HOLD)
@require_POST
def lot_hold(request: HttpRequest, code: str) -> HttpResponse:
    lot = get_object_or_404(MaterialLot, code=code)
    return _act(
        request,
        ReasonForm(request.POST),
        lambda data: hold_lot(lot, by=request.user, reason=data["reason"]),
        f"Lot {lot.code} and every cell that consumed it are on hold.",
        reverse("lot", args=[lot.code]),
    )


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
            "page": _page(request, selectors.holds_list(status=status)),
            "query": _query_without_page(request),
            "status_filter": status,
            "dispositions": Hold.Disposition.choices,
        },
    )


@roles.page_permission(roles.VIEW_HOLDS)
def hold_rules(request: HttpRequest) -> HttpResponse:
    return render(
        request, "batches/hold_rules.html", {"histories": selectors.hold_rule_histories()}
    )


@roles.page_permission(roles.SET_HOLD_RULES)
@require_POST
def hold_rule_supersede(request: HttpRequest, code: str) -> HttpResponse:
    if code not in HoldRule.Code.values:
        raise Http404(f"No hold rule {code}")
    form = ThresholdsForm(request.POST, thresholds=rule_thresholds(code))
    return _act(
        request,
        form,
        lambda data: supersede_hold_rule(
            code, parameters=form.parameters(), by=request.user, note=data["reason"]
        ),
        lambda new: f"{code} v{new.version} is in force.",
        f"{reverse('hold-rules')}#rule-{code}",
    )


@roles.page_permission(roles.DISPOSITION)
@require_POST
def hold_disposition(request: HttpRequest, pk: int) -> HttpResponse:
    """Close a hold with a disposition. From the queue (htmx) it answers with the hold's row,
    closed or with the error; from a page it redirects back."""
    hold = get_object_or_404(Hold, pk=pk)
    form = DispositionForm(request.POST)
    error = ""
    if not form.is_valid():
        error = first_error(form)
    else:
        try:
            release_hold(
                hold,
                by=request.user,
                disposition=form.cleaned_data["disposition"],
                reason=form.cleaned_data["reason"],
            )
        except DomainError as refused:
            error = refused.detail
    if request.headers.get("HX-Request"):
        hold = selectors.holds_with_details(Hold.objects.filter(pk=pk)).get()
        return render(
            request,
            "batches/_hold_row.html",
            # 200 even with an error: htmx swaps only successful responses into the row.
            {"hold": hold, "error": error, "dispositions": Hold.Disposition.choices},
        )
    if error:
        messages.error(request, error)
    else:
        messages.success(request, f"Hold {hold.pk} closed: {form.cleaned_data['disposition']}.")
    return redirect(_back(request, reverse("holds")))


# ---------------------------------------------------------------- station results not applied


@roles.page_permission(roles.VIEW_STATION_RESULTS)
def unapplied_results(request: HttpRequest) -> HttpResponse:
    state = request.GET.get("state", "")
    state = state if state in selectors.UNAPPLIED else "rejected"
    line, station = request.GET.get("line", ""), request.GET.get("station", "")
    reason = request.GET.get("reason", "")
    results = selectors.unapplied_results(state=state, line=line, station=station, reason=reason)
    reasons = selectors.unapplied_reasons(state=state, line=line, station=station)
    choices = [(code, f"{code or 'queued'} ({count})") for code, count in reasons]
    if reason and reason not in dict(reasons):  # none lately, older ones listed
        choices.append((reason, reason))
    return render(
        request,
        "batches/unapplied_results.html",
        {
            "page": _page(request, results),
            "query": _query_without_page(request),
            "states": selectors.UNAPPLIED,
            "state": state,
            "reasons": reasons,
            "reason_choices": choices,
            "reason_days": selectors.REJECTED_REASONS_DAYS,
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
    return _act(
        request,
        form,
        lambda data: ingestion.requeue_rejected(
            [entry.pk for entry in data["entries"]], by=request.user, reason=data["reason"]
        ),
        lambda sent: f"{sent} result{pluralize(sent)} sent to the workers again.",
        _back(request, reverse("unapplied-results")),
    )


# ---------------------------------------------------------------- search


@roles.page_permission(roles.VIEW_CELLS)
def search(request: HttpRequest) -> HttpResponse:
    results = selectors.search(request.GET.get("q", ""))
    if results.exact_url:
        return redirect(results.exact_url)
    return render(request, "batches/search.html", {"results": results})
