"""Pages of the battery passport: a cell's passport, a batch's passport export and a design's
passport master data."""

from __future__ import annotations

import json
import re
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from analytics.master_data import as_data, release_master_data, released_for
from analytics.models import PassportExport, PassportMasterData
from analytics.passport import PARTS, passport_of
from analytics.passport_exports import export_path, request_export
from batches.models import Batch, Cell
from core import roles
from core.errors import DomainError
from lines.models import CellDesign

PART_TITLES = {
    "generalProductInformation": gettext_lazy("General product information"),
    "materialComposition": gettext_lazy("Material composition"),
    "performanceAndDurability": gettext_lazy("Performance and durability"),
    "carbonFootprint": gettext_lazy("Carbon footprint"),
}


def _words(key: str) -> str:
    """A data-model key as words: batteryTechicalProperties -> Battery techical properties."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", key)
    return spaced[:1].upper() + spaced[1:].lower()


def _rows(value: Any, path: tuple[str, ...] = ()) -> list[tuple[str, Any]]:
    """A part flattened into (where, value) rows, lists numbered from 1."""
    if isinstance(value, dict):
        return [row for key, item in value.items() for row in _rows(item, (*path, _words(key)))]
    if isinstance(value, list):
        if not value:
            return [(" › ".join(path), "none")]
        if all(not isinstance(item, dict | list) for item in value):
            return [(" › ".join(path), "; ".join(map(str, value)))]
        return [row for i, item in enumerate(value, 1) for row in _rows(item, (*path, f"#{i}"))]
    return [(" › ".join(path), value)]


@roles.page_permission(roles.VIEW_CELLS)
def cell_passport(request: HttpRequest, serial: str) -> HttpResponse:
    cell = get_object_or_404(Cell.objects.select_related("batch__design"), serial=serial)
    try:
        passport = passport_of(serial)
    except DomainError as refused:
        context = {"cell": cell, "refused": refused}
        return render(request, "batches/cell_passport.html", context, status=refused.status)
    parts = [(PART_TITLES[part], _rows(passport[part])) for part in PARTS]
    return render(
        request,
        "batches/cell_passport.html",
        {
            "cell": cell,
            "parts": parts,
            "master": released_for(cell.batch.design),
            "raw": json.dumps(passport, indent=2),
        },
    )


@roles.page_permission(roles.VIEW_CELLS)
@require_POST
def batch_passport_export(request: HttpRequest, code: str) -> HttpResponse:
    batch = get_object_or_404(Batch, code=code)
    request_export(batch, by=request.user)
    messages.success(
        request,
        _("The passports of %(batch)s are being built; reload shortly.") % {"batch": batch.code},
    )
    return redirect(reverse("batch", args=[batch.code]) + "#passports")


@roles.page_permission(roles.VIEW_CELLS)
def passport_export_download(request: HttpRequest, pk: int) -> HttpResponse:
    export = get_object_or_404(PassportExport.objects.select_related("batch"), pk=pk)
    if export.status != PassportExport.Status.READY or not export_path(export).is_file():
        raise Http404(f"Passport export {pk} is not ready")
    return FileResponse(
        export_path(export).open("rb"),
        as_attachment=True,
        filename=f"passports-{export.batch.code}.zip",
        content_type="application/zip",
    )


class MasterDataForm(forms.Form):
    data = forms.CharField(widget=forms.Textarea(attrs={"rows": 30, "class": "mono"}))
    note = forms.CharField(max_length=500, help_text="What changed and why")

    def clean_data(self) -> dict:
        try:
            data = json.loads(self.cleaned_data["data"])
        except json.JSONDecodeError as error:
            raise forms.ValidationError(_("Not JSON: %(error)s") % {"error": error}) from None
        if not isinstance(data, dict):
            raise forms.ValidationError(_("A JSON object of the master-data fields."))
        return data


@roles.page_permission(roles.VIEW_CELLS)
def design_master_data(request: HttpRequest, code: str) -> HttpResponse:
    design = get_object_or_404(CellDesign, code=code)
    current = released_for(design)
    may_release = request.user.has_perm(roles.RELEASE_PASSPORT_MASTER_DATA)
    errors: dict = {}
    if request.method == "POST":
        if not may_release:
            raise PermissionDenied
        form = MasterDataForm(request.POST)
        if form.is_valid():
            try:
                version = release_master_data(
                    design,
                    form.cleaned_data["data"],
                    by=request.user,
                    note=form.cleaned_data["note"],
                )
            except DomainError as error:
                messages.error(request, error.detail)
                errors = error.errors
            else:
                messages.success(
                    request, _("Version %(version)s released.") % {"version": version.version}
                )
                return redirect("design-master-data", code=design.code)
        status = 400
    else:
        initial = as_data(current) if current else {}
        form = MasterDataForm(initial={"data": json.dumps(initial, indent=2)})
        status = 200
    versions = PassportMasterData.objects.filter(design=design).select_related("released_by")
    return render(
        request,
        "batches/design_master_data.html",
        {
            "design": design,
            "current": current,
            "versions": versions,
            "form": form,
            "errors": errors,
            "may_release": may_release,
            "fields": _rows(as_data(current)) if current else [],
        },
        status=status,
    )
