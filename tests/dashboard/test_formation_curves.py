"""Formation curves an engineer reads: the batch page's overlay of its cells' first-cycle
voltage-vs-capacity curves, the raw cycler file from the cell page, and the demo's cycler files
going through the station API and the worker."""

from __future__ import annotations

import csv
import hashlib
import html
import io
import json
import random
import re
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from analytics.curves import batch_overlay
from batches.models import Curve, ProcessRun
from batches.services import hold_cell
from demo.cycler_files import formation_csv
from stations.models import InboxEntry

UPLOAD_URL = "/api/v1/station/cycler-files"


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


@pytest.fixture
def pressed(proto_batch, stations, record):
    """The batch's ten cells stacked and pressed, waiting for formation."""
    cells = list(proto_batch.cells.order_by("position"))
    for cell in cells:
        record(cell, stations["PR-STK-1"])
        record(cell, stations["PR-PRS-1"], equipment_ref="L1")
    return cells


def upload(former, cell, content: bytes, *, event_id: str = "", name: str = "formation.csv"):
    return former.http.post(
        UPLOAD_URL,
        {
            "file": SimpleUploadedFile(name, content),
            "cell": cell.serial,
            "event_id": event_id or f"F-{cell.serial}",
            "format": "csv",
        },
        format="multipart",
    )


def discharge_capacity_from_columns(content: bytes) -> float:
    """The first discharge's Ah integrated from the file's own columns (trapezoid over
    consecutive discharge rows), apart from the readers' code."""
    rows = list(csv.DictReader(io.StringIO(content.decode())))
    t = [float(r["Time(s)"]) for r in rows]
    current = [float(r["Current(A)"]) for r in rows]
    total = 0.0
    for i in range(len(rows) - 1):
        if current[i] < 0 and current[i + 1] < 0:
            total += (t[i + 1] - t[i]) * (-current[i] - current[i + 1]) / 2 / 3600
    return total


# ---------------------------------------------------------------- the demo's files


def test_a_demo_formation_file_is_accepted_by_the_upload_and_gives_curves_and_features(
    pressed, station_client, process_pending
):
    cell = pressed[0]
    design = cell.batch.design
    content = formation_csv(design, random.Random(3))
    response = upload(station_client("PR-FRM-1"), cell, content)
    assert response.status_code == 202 and response.json() == {"accepted": 1, "duplicates": 0}

    process_pending()

    entry = InboxEntry.objects.get(event_id=f"F-{cell.serial}")
    assert (entry.status, entry.outcome) == ("processed", "pass")
    run = ProcessRun.objects.get(cell=cell, step__station_kind="formation")
    values = {m.name: m.value for m in run.measurements.all()}
    expected = discharge_capacity_from_columns(content)
    assert values["first_discharge_capacity_ah"] == pytest.approx(expected, rel=0.01)
    # A realistic first cycle of the 5 Ah design: 80-95 % ICE, no soft short.
    assert 0.8 * 5.0 <= values["first_discharge_capacity_ah"] <= 1.1 * 5.0
    assert 0.80 <= values["initial_coulombic_efficiency"] <= 0.95
    assert values["soft_short_events"] == 0
    curve = Curve.objects.get(run=run, name="voltage_vs_capacity")
    assert curve.x_name == "capacity_ah" and len(curve.x) > 100
    assert max(curve.y) == pytest.approx(design.voltage_max_v, abs=0.01)
    assert max(curve.x) == pytest.approx(values["first_charge_capacity_ah"], rel=0.01)


def test_a_demo_file_with_a_soft_short_fails_formation(pressed, station_client, process_pending):
    cell = pressed[0]
    content = formation_csv(cell.batch.design, random.Random(3), soft_short=True)
    assert upload(station_client("PR-FRM-1"), cell, content).status_code == 202
    process_pending()
    run = ProcessRun.objects.get(cell=cell, step__station_kind="formation")
    assert run.verdict == "fail"
    assert run.measurements.get(name="soft_short_events").value == 1


# ---------------------------------------------------------------- the raw file


@pytest.fixture
def formed_from_file(pressed, station_client, process_pending):
    cell = pressed[0]
    content = formation_csv(cell.batch.design, random.Random(5))
    upload(station_client("PR-FRM-1"), cell, content, name="ch07 run 2611.csv")
    process_pending()
    run = ProcessRun.objects.get(cell=cell, step__station_kind="formation")
    return cell, run, content


def test_the_cell_page_offers_the_raw_cycler_file_with_its_sha256(
    formed_from_file, signed_in, operator
):
    cell, run, content = formed_from_file
    page = signed_in(operator).get(f"/cells/{cell.serial}/").content.decode()
    sha256 = hashlib.sha256(content).hexdigest()
    link = f"/cells/{cell.serial}/runs/{run.pk}/cycler-file"
    assert f'href="{link}"' in page and sha256 in page
    assert "ch07 run 2611.csv" in page

    response = signed_in(operator).get(link)
    assert response.status_code == 200
    body = b"".join(response.streaming_content)
    assert body == content and hashlib.sha256(body).hexdigest() == sha256
    assert response["Content-Disposition"] == 'attachment; filename="ch07 run 2611.csv"'


def test_the_raw_file_needs_a_signed_in_person_with_the_cell_view(
    formed_from_file, signed_in, outsider
):
    cell, run, _ = formed_from_file
    link = f"/cells/{cell.serial}/runs/{run.pk}/cycler-file"
    anonymous = signed_in(None).get(link)
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
    assert signed_in(outsider).get(link).status_code == 403


def test_a_run_without_a_file_or_of_another_cell_is_not_found(
    formed_from_file, pressed, signed_in, operator
):
    cell, run, _ = formed_from_file
    browser = signed_in(operator)
    assert browser.get(f"/cells/{pressed[1].serial}/runs/{run.pk}/cycler-file").status_code == 404
    pressing = ProcessRun.objects.get(cell=cell, step__station_kind="pressing")
    assert browser.get(f"/cells/{cell.serial}/runs/{pressing.pk}/cycler-file").status_code == 404
    assert browser.get(f"/cells/NO-SUCH-CELL/runs/{run.pk}/cycler-file").status_code == 404
    # A run id past the database's bigint: not found, not a database error.
    assert browser.get(f"/cells/{cell.serial}/runs/{10**20}/cycler-file").status_code == 404


def test_a_stored_file_gone_missing_is_a_404_page_that_says_so(
    formed_from_file, signed_in, operator, media_root
):
    cell, run, content = formed_from_file
    entry = InboxEntry.objects.get(run=run)
    (Path(media_root) / entry.payload["path"]).unlink()
    response = signed_in(operator).get(f"/cells/{cell.serial}/runs/{run.pk}/cycler-file")
    assert response.status_code == 404
    page = response.content.decode()
    assert "Cycler file missing" in page and hashlib.sha256(content).hexdigest() in page


# ---------------------------------------------------------------- the batch overlay


def vq_curve(points: int, top: float) -> dict:
    """A charge to `top` V over 0..5 Ah and back: `points` points, the last at (0.6 Ah, 3.0 V)."""
    half = points // 2
    x = [5.0 * i / half for i in range(half)] + [
        5.0 - 4.4 * i / (points - half - 1) for i in range(points - half)
    ]
    y = [3.0 + (top - 3.0) * i / half for i in range(half)] + [
        top - (top - 3.0) * i / (points - half - 1) for i in range(points - half)
    ]
    return {
        "voltage_vs_capacity": {
            "t_s": x,
            "values": y,
            "unit": "V",
            "x_name": "capacity_ah",
            "x_unit": "Ah",
        }
    }


@pytest.fixture
def overlaid(pressed, stations, record, quality_engineer):
    """Five cells formed with a 500-point V-Q curve each: cell 2 fails formation (low ICE),
    cell 3 is put on hold by quality."""
    formed = pressed[:5]
    for index, cell in enumerate(formed):
        record(
            cell,
            stations["PR-FRM-1"],
            upset="low_ice" if index == 1 else "",
            curves=vq_curve(500, 4.2 + index / 100),
        )
    hold_cell(formed[2], by=quality_engineer, reason="pouch swelling")
    return formed


def overlay_data(page: str) -> list[dict]:
    found = re.search(
        r'<script id="batch-curve-data" type="application/json">(.*?)</script>', page, re.S
    )
    return json.loads(html.unescape(found.group(1)))


def test_the_batch_page_overlays_its_cells_curves_with_failed_and_held_ones_on_top(
    overlaid, proto_batch, signed_in, operator, django_assert_max_num_queries
):
    browser = signed_in(operator)
    # The page's fixed reads (tests/dashboard/test_query_counts.py), the overlay's two and the
    # passport exports' one; the batch's figures computed and stored on this first view (nine).
    with django_assert_max_num_queries(36):
        response = browser.get(f"/batches/{proto_batch.code}/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "5 of 5 cells" in page and "1 failed</span>" in page and "1 on hold</span>" in page
    assert "js/batch_curves.js" in page

    curves = overlay_data(page)
    serials = [c.serial for c in overlaid]
    states = {c["cell"]: c["state"] for c in curves}
    assert states == {
        serials[0]: "other",
        serials[1]: "failed",
        serials[2]: "held",
        serials[3]: "other",
        serials[4]: "other",
    }
    # Drawn in order, so the marked curves come last and lie on top.
    assert [c["state"] for c in curves] == ["other", "other", "other", "held", "failed"]
    for curve in curves:
        # 500 points thinned with a stride of 3 (the first of every three), plus the last.
        assert len(curve["points"]) == 168
        assert curve["points"][-1] == {"x": pytest.approx(0.6), "y": pytest.approx(3.0)}


def test_the_overlay_draws_marked_cells_first_then_others_spread_over_the_batch(overlaid):
    overlay = batch_overlay(overlaid[0].batch, curves=3, points=50)
    assert (overlay.shown, overlay.cells_with_curves, overlay.failed, overlay.held) == (3, 5, 1, 1)
    # Failed and held first; of the three others (cells 1, 4, 5) one, the first of an even spread.
    assert {c["cell"] for c in overlay.curves} == {
        overlaid[1].serial,
        overlaid[2].serial,
        overlaid[0].serial,
    }
    assert all(len(c["points"]) <= 51 for c in overlay.curves)


def test_a_batch_without_curves_says_so_and_loads_no_chart(proto_batch, signed_in, operator):
    page = signed_in(operator).get(f"/batches/{proto_batch.code}/").content.decode()
    assert "No cell of this batch has a voltage-vs-capacity curve yet" in page
    assert "batch-curve-data" not in page and "chart.umd" not in page
