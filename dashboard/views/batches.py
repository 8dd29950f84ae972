"""Pages of batches, cells and lots, and the search: read through selectors, act through services."""

from __future__ import annotations

from pathlib import Path

from django.db.models import QuerySet
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from analytics.curves import OVERLAY_CURVES, OVERLAY_POINTS, batch_overlay
from analytics.energy import (
    batch_figures,
    cell_energy,
    cost_targets,
)
from batches import selectors
from batches.models import Batch, Cell, Hold, MaterialLot, MaterialRole
from batches.services import (
    hold_batch,
    hold_cell,
    hold_lot,
    hold_press_cycle,
    rework_cell,
    scrap_cell,
    set_lot_status,
)
from core import roles
from dashboard.forms import (
    LotStatusForm,
    ReasonForm,
    ReworkForm,
)
from dashboard.views.common import act, page_of, query_without_page
from formation import storage as cycler_storage
from lines.models import Line, Station, StationKind
from stations.models import InboxEntry

CELLS_PER_PAGE = 50
LABELS_PER_SHEET = 40  # 5 x 8 labels on an A4 sheet


# ---------------------------------------------------------------- batches


@roles.page_permission(roles.VIEW_BATCHES)
def batch_list(request: HttpRequest) -> HttpResponse:
    line, status = request.GET.get("line", ""), request.GET.get("status", "")
    batches = selectors.batch_list(line=line, status=status)
    return render(
        request,
        "batches/batch_list.html",
        {
            "page": page_of(request, batches),
            "query": query_without_page(request),
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
    overlay = batch_overlay(batch)
    economics, energy_spreads = batch_figures([batch])[batch.pk]
    return render(
        request,
        "batches/batch_detail.html",
        {
            "batch": batch,
            "progress": selectors.progress_of([batch])[0],
            "page": page_of(request, cells, CELLS_PER_PAGE),
            "query": query_without_page(request),
            "filters": filters,
            "cell_statuses": [*Cell.Status.choices, ("on_hold", _("On hold"))],
            "grades": selectors.grades_of(batch),
            "open_holds": selectors.open_holds_of_batch(batch),
            "dispositions": Hold.Disposition.choices,
            "steps": StationKind.choices,
            "economics": economics,
            "targets": cost_targets(batch.line.currency),
            "energy_spreads": energy_spreads,
            "overlay": overlay,
            "overlay_data": overlay.curves,
            "overlay_limits": (OVERLAY_CURVES, OVERLAY_POINTS),
        },
    )


@roles.page_permission(roles.VIEW_BATCHES)
def batch_history(request: HttpRequest, code: str) -> HttpResponse:
    """The batch's holds and timeline, a part its page fetches as it loads: a batch held
    hundreds of times has as many holds' events to read and write out as the rest of the page
    costs, and the cells' table need not wait for them."""
    batch = get_object_or_404(Batch, code=code)
    holds = selectors.batch_holds(batch)
    return render(
        request,
        "batches/_batch_history.html",
        {
            "batch": batch,
            "holds": holds.shown,
            "holds_total": len(holds.times),
            "timeline": selectors.batch_timeline(batch, holds.times),
        },
    )


@roles.page_permission(roles.HOLD)
@require_POST
def batch_hold(request: HttpRequest, code: str) -> HttpResponse:
    batch = get_object_or_404(Batch, code=code)
    return act(
        request,
        ReasonForm(request.POST),
        lambda data: hold_batch(batch, by=request.user, reason=data["reason"]),
        _("Batch %(batch)s is on hold: none of its cells can be tracked in.")
        % {"batch": batch.code},
        reverse("batch", args=[batch.code]),
    )


@roles.page_permission(roles.VIEW_BATCHES)
def batch_labels(request: HttpRequest, code: str) -> HttpResponse:
    batch = get_object_or_404(Batch.objects.select_related("design", "line"), code=code)
    cells = batch.cells.order_by("position").only("serial", "position", "batch_id")
    page = page_of(request, cells, LABELS_PER_SHEET)
    # ?qr=passport: the QR code carries the cell's passport URL instead of its serial.
    passport_qr = request.GET.get("qr") == "passport"
    page.object_list = list(page.object_list)
    for cell in page.object_list:
        cell.qr_text = (
            request.build_absolute_uri(reverse("cell-passport", args=[cell.serial]))
            if passport_qr
            else cell.serial
        )
    return render(
        request,
        "batches/labels.html",
        {
            "batch": batch,
            "page": page,
            "passport_qr": passport_qr,
            "query": query_without_page(request),
        },
    )


# ---------------------------------------------------------------- cells


@roles.page_permission(roles.VIEW_CELLS)
def cell_detail(request: HttpRequest, serial: str) -> HttpResponse:
    try:
        cell = selectors.cell_detail(serial)
    except Cell.DoesNotExist:
        raise Http404(f"No cell {serial}") from None
    runs = selectors.runs_of(cell)
    # The raw cycler file each formation run was read from, kept as the station sent it.
    files = {entry.run_id: entry for entry in _cycler_files(cell)}
    for run in runs:
        run.cycler_file = files.get(run.pk)
        run.panels = selectors.curve_panels(run)
    charts = [panel for run in runs for panel in run.panels]
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
            "energy": cell_energy(cell),
        },
    )


def _cycler_files(cell: Cell) -> QuerySet:
    return InboxEntry.objects.filter(
        kind=InboxEntry.Kind.CYCLER_FILE, status=InboxEntry.Status.PROCESSED, run__cell=cell
    ).only("id", "run_id", "payload")


@roles.page_permission(roles.VIEW_CELLS)
def cell_cycler_file(request: HttpRequest, serial: str, run: int) -> HttpResponse:
    """The raw cycler file a run of this cell was read from, byte for byte as the station sent it."""
    entry = _cycler_files(get_object_or_404(Cell, serial=serial)).filter(run_id=run).first()
    if entry is None:
        raise Http404(f"No cycler file for run {run} of cell {serial}")
    payload = entry.payload
    name = payload.get("original_name") or f"{serial}-{payload['sha256'][:12]}"
    try:
        stream, size = cycler_storage.open_stream(payload["path"])
    except FileNotFoundError:
        # Recorded, but the stored copy is gone (a restore without MEDIA_ROOT or the bucket, a
        # disk replaced): say which file is missing rather than a bare 404 or a 500.
        return render(
            request,
            "batches/cycler_file_missing.html",
            {"serial": serial, "name": name, "payload": payload},
            status=404,
        )
    # Sent on in chunks as it is read from the storage, never whole in memory.
    response = FileResponse(
        stream,
        as_attachment=True,
        filename=Path(name).name,
        content_type="application/octet-stream",
    )
    response.block_size = cycler_storage.CHUNK_BYTES
    response["Content-Length"] = str(size)  # a stream from S3 cannot tell FileResponse its size
    return response


def _cell(serial: str) -> Cell:
    return get_object_or_404(Cell.objects.select_related("batch__route"), serial=serial)


@roles.page_permission(roles.HOLD)
@require_POST
def cell_hold(request: HttpRequest, serial: str) -> HttpResponse:
    cell = _cell(serial)
    return act(
        request,
        ReasonForm(request.POST),
        lambda data: hold_cell(cell, by=request.user, reason=data["reason"]),
        _("Cell %(cell)s is on hold.") % {"cell": cell.serial},
        reverse("cell", args=[cell.serial]),
    )


@roles.page_permission(roles.DISPOSITION)
@require_POST
def cell_scrap(request: HttpRequest, serial: str) -> HttpResponse:
    cell = _cell(serial)
    return act(
        request,
        ReasonForm(request.POST),
        lambda data: scrap_cell(cell, by=request.user, reason=data["reason"]),
        _("Cell %(cell)s is scrapped.") % {"cell": cell.serial},
        reverse("cell", args=[cell.serial]),
    )


@roles.page_permission(roles.DISPOSITION)
@require_POST
def cell_rework(request: HttpRequest, serial: str) -> HttpResponse:
    cell = _cell(serial)
    form = ReworkForm(request.POST, route_steps=cell.batch.route.steps.all())
    return act(
        request,
        form,
        lambda data: rework_cell(cell, step=data["step"], by=request.user, reason=data["reason"]),
        _("Cell %(cell)s goes back to %(step)s.")
        % {"cell": cell.serial, "step": form.cleaned_data.get("step") if form.is_valid() else ""},
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
            "page": page_of(
                request, selectors.lot_list(role=role, status=status, with_cell_count=True)
            ),
            "query": query_without_page(request),
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
    tree = selectors.lot_tree(lot)
    counts = selectors.lot_consumer_counts(tree)
    return render(
        request,
        "batches/lot_detail.html",
        {
            "lot": lot,
            "ancestry": tree.above,
            "below": tree.below,
            "counts": counts,
            "page": page_of(
                request,
                selectors.lot_consumers(tree),
                CELLS_PER_PAGE,
                count=counts["consumptions"],
            ),
            "query": query_without_page(request),
            "holds": selectors.holds_over_lot(tree),
            "statuses": [
                (status, label)
                for status, label in MaterialLot.Status.choices
                if status in MaterialLot.TRANSITIONS[lot.status]
            ],
        },
    )


@roles.page_permission(roles.SET_LOT_STATUS)
@require_POST
def lot_status(request: HttpRequest, code: str) -> HttpResponse:
    lot = get_object_or_404(MaterialLot, code=code)
    form = LotStatusForm(request.POST)
    return act(
        request,
        form,
        lambda data: set_lot_status(lot, data["status"], by=request.user, reason=data["reason"]),
        lambda changed: (
            _("Lot %(lot)s is now %(status)s.")
            % {"lot": changed.code, "status": changed.get_status_display().lower()}
        ),
        reverse("lot", args=[lot.code]),
    )


@roles.page_permission(roles.HOLD)
@require_POST
def lot_hold(request: HttpRequest, code: str) -> HttpResponse:
    lot = get_object_or_404(MaterialLot, code=code)
    return act(
        request,
        ReasonForm(request.POST),
        lambda data: hold_lot(lot, by=request.user, reason=data["reason"]),
        _("Lot %(lot)s and every cell that consumed it are on hold.") % {"lot": lot.code},
        reverse("lot", args=[lot.code]),
    )


# ---------------------------------------------------------------- search


@roles.page_permission(roles.VIEW_CELLS)
def search(request: HttpRequest) -> HttpResponse:
    results = selectors.search(request.GET.get("q", ""))
    if results.exact_url:
        return redirect(results.exact_url)
    return render(request, "batches/search.html", {"results": results})


# ---------------------------------------------------------------- press cycles


@roles.page_permission(roles.VIEW_CELLS)
def press_cycle(request: HttpRequest, station: str, ref: str) -> HttpResponse:
    cycle = selectors.PressCycle(station, ref)
    runs = list(cycle.runs())
    if not runs:
        raise Http404(f"No press cycle {cycle.code}")
    holds = list(cycle.holds())
    return render(
        request,
        "batches/press_cycle.html",
        {
            "cycle": cycle,
            "runs": runs,
            "holds": holds,
            "open_hold": next((h for h in holds if h.status == Hold.Status.OPEN), None),
            "press": runs[0].station,
        },
    )


@roles.page_permission(roles.HOLD)
@require_POST
def press_cycle_hold(request: HttpRequest, station: str, ref: str) -> HttpResponse:
    press = get_object_or_404(Station, code=station, kind=StationKind.PRESSING)
    return act(
        request,
        ReasonForm(request.POST),
        lambda data: hold_press_cycle(press, ref, by=request.user, reason=data["reason"]),
        _("Press cycle %(cycle)s is on hold: every cell pressed in it, and any reported later.")
        % {"cycle": f"{station}:{ref}"},
        reverse("press-cycle", args=[station, ref]),
    )
