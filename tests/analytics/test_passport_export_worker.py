"""The batch's passport ZIP, asked for on the batch page and built by a real Celery worker that
connects as the runtime database role."""

from __future__ import annotations

import zipfile

import pytest

from analytics.models import PassportExport
from batches.services import create_batch, hold_cell, scrap_cell
from lines.models import CellDesign, Line, Route
from tests import processes

LOTS = {"cathode": "CAT-2611-A-01", "electrolyte": "SE-2611-01", "pouch": "POUCH-2611-01"}


@pytest.mark.processes
@pytest.mark.django_db(transaction=True)
def test_a_worker_builds_the_zip_of_the_good_cells(
    plant, stations, record, line_engineer, quality_engineer, signed_in, settings, tmp_path
):
    line = Line.objects.get(code="proto")
    batch = create_batch(
        line=line,
        design=CellDesign.objects.get(code="SSB-5AH-P1"),
        route=Route.objects.get(line=line, code="std"),
        quantity=4,
        by=line_engineer,
        material_lots=LOTS,
    )
    cells = list(batch.cells.order_by("position"))
    for cell in cells:
        record(cell, stations["PR-STK-1"], material_lots=LOTS)
        record(cell, stations["PR-PRS-1"], equipment_ref="L1")
        record(cell, stations["PR-FRM-1"])
    hold_cell(cells[1], by=quality_engineer, reason="dent in the pouch")
    scrap_cell(cells[2], by=quality_engineer, reason="swollen")

    stack = processes.Stack(processes.shared_broker_url(), tmp_path)
    settings.CELERY_TASK_DEFAULT_QUEUE = stack.env["CELERY_TASK_DEFAULT_QUEUE"]
    try:
        stack.start_worker()
        response = signed_in(line_engineer).post(f"/batches/{batch.code}/passports")
        assert response.status_code == 302
        processes.wait_for(
            lambda: PassportExport.objects.get(batch=batch).status != "requested",
            timeout=60,
            what="the worker building the passports",
        )
    finally:
        stack.stop()
    export = PassportExport.objects.get(batch=batch)
    assert export.status == PassportExport.Status.READY, (export.error, stack.logs())
    with zipfile.ZipFile(tmp_path / "media" / export.file) as archive:
        assert set(archive.namelist()) == {f"{cells[0].serial}.json", f"{cells[3].serial}.json"}
