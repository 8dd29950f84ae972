"""Exports of measurements: the rows joined with their record, CSV and XLSX, any filter, and a
large export in bounded memory."""

from __future__ import annotations

import csv
import io
import threading
from datetime import UTC, timedelta

import openpyxl
import pytest
from django.db import connection
from django.utils import timezone

from batches.models import Measurement, ProcessRun
from bench.bench_exports import bulk_batch, download

LOTS = {"cathode": "CAT-2611-A-01", "electrolyte": "SE-2611-01"}
URL = "/api/v1/exports/measurements"


@pytest.fixture
def exported(proto_batch, stations, record):
    """Cells 1-3 stacked with the two lots at known times and offsets; cells 1 and 2 pressed in
    press cycle CIP-7, cell 2 under the minimum density (failed)."""
    cells = [proto_batch.cells.get(position=p) for p in (1, 2, 3)]
    start = (timezone.now() - timedelta(hours=4)).replace(microsecond=0)
    for i, cell in enumerate(cells):
        record(
            cell,
            stations["PR-STK-1"],
            material_lots=LOTS,
            measurements={"max_offset_x_mm": 0.1 + i / 100},
            defects=[],
            occurred_at=start + timedelta(minutes=i),
        )
    for i, cell in enumerate(cells[:2]):
        record(
            cell,
            stations["PR-PRS-1"],
            equipment_ref="CIP-7",
            measurements={"relative_density_pct": 95.0 if i == 0 else 86.5},
            defects=[],
            occurred_at=start + timedelta(hours=1, minutes=i),
        )
    return proto_batch, cells, start


def _csv(response) -> list[dict]:
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="measurements-')
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


def test_csv_rows_carry_the_cells_record(exported, api_as, operator, django_assert_max_num_queries):
    batch, cells, start = exported
    client = api_as(operator)
    # The token, the user's permissions, the batch filter, the savepoint of the export's
    # snapshot (its own transaction outside a test); the COPYs themselves go by psycopg.
    with django_assert_max_num_queries(6):
        response = client.get(URL, {"format": "csv", "batch": batch.code})
        rows = _csv(response)

    assert len(rows) == Measurement.objects.filter(run__cell__batch=batch).count()
    first_offset = next(
        r for r in rows if r["serial"] == cells[0].serial and r["parameter"] == "max_offset_x_mm"
    )
    recipe = ProcessRun.objects.get(cell=cells[0], step__station_kind="stacking").recipe_version
    assert first_offset == {
        "serial": cells[0].serial,
        "batch": batch.code,
        "design": "SSB-5AH-P1",
        "line": "proto",
        "station": "PR-STK-1",
        "step": "stacking",
        "equipment": "",
        "recipe": recipe.recipe.name,
        "recipe_version": str(recipe.version),
        "lots": "cathode=CAT-2611-A-01 electrolyte=SE-2611-01",
        "occurred_at": start.astimezone(UTC).isoformat(),
        "parameter": "max_offset_x_mm",
        "value": "0.1",
        "unit": "mm",
        "min": "0",
        "max": "0.3",
        "in_spec": "true",
        "verdict": "pass",
    }
    density = next(
        r
        for r in rows
        if r["serial"] == cells[1].serial and r["parameter"] == "relative_density_pct"
    )
    assert (density["station"], density["step"], density["equipment"]) == (
        "PR-PRS-1",
        "pressing",
        "CIP-7",
    )
    assert (density["value"], density["min"], density["max"]) == ("86.5", "90", "")
    assert (density["in_spec"], density["verdict"]) == ("false", "fail")
    assert (
        density["occurred_at"]
        == (start + timedelta(hours=1, minutes=1)).astimezone(UTC).isoformat()
    )
    # In the order results occurred: the three stackings, then the two pressings.
    assert rows[0]["serial"] == cells[0].serial
    times = [r["occurred_at"] for r in rows]
    assert times == sorted(times)


def test_filters_and_one_parameter(exported, api_as, operator):
    batch, cells, _ = exported
    client = api_as(operator)
    rows = _csv(
        client.get(
            "/api/v1/exports/measurements",
            {"batch": batch.code, "parameter": "relative_density_pct"},
        )
    )
    assert [(r["serial"], r["value"]) for r in rows] == [
        (cells[0].serial, "95"),
        (cells[1].serial, "86.5"),
    ]
    rows = _csv(
        client.get(
            "/api/v1/exports/measurements",
            {"equipment": "CIP-7", "step": "pressing", "parameter": "relative_density_pct"},
        )
    )
    assert len(rows) == 2
    rows = _csv(client.get("/api/v1/exports/measurements", {"line": "yokohama"}))
    assert rows == []  # a header alone


def test_xlsx_holds_the_same_rows(exported, api_as, operator):
    batch, cells, start = exported
    response = api_as(operator).get(
        "/api/v1/exports/measurements", {"format": "xlsx", "batch": batch.code}
    )
    assert response.status_code == 200
    assert response["Content-Type"] == (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    assert ".xlsx" in response["Content-Disposition"]
    book = openpyxl.load_workbook(io.BytesIO(b"".join(response.streaming_content)))
    sheet = book["measurements"]
    rows = list(sheet.iter_rows(values_only=True))
    header = list(rows[0])
    assert header[header.index("serial") : header.index("lots") + 1] == [
        "serial",
        "batch",
        "design",
        "line",
        "station",
        "step",
        "equipment",
        "recipe",
        "recipe_version",
        "lots",
    ]
    assert "occurred_at (Asia/Tokyo)" in header
    assert len(rows) - 1 == Measurement.objects.filter(run__cell__batch=batch).count()
    by_name = [dict(zip(header, row, strict=True)) for row in rows[1:]]
    density = next(
        r
        for r in by_name
        if r["serial"] == cells[1].serial and r["parameter"] == "relative_density_pct"
    )
    tokyo_time = timezone.localtime(start + timedelta(hours=1, minutes=1)).replace(tzinfo=None)
    assert density["occurred_at (Asia/Tokyo)"] == tokyo_time
    assert (density["value"], density["min"], density["max"]) == (86.5, 90, None)
    assert (density["in_spec"], density["verdict"], density["equipment"]) == (
        False,
        "fail",
        "CIP-7",
    )
    assert density["lots"] == "cathode=CAT-2611-A-01 electrolyte=SE-2611-01"


@pytest.mark.django_db(transaction=True)
def test_an_export_over_days_comes_in_order_from_one_snapshot(proto_batch, stations, record):
    """Stackings every five hours over two days are exported window after window (the first
    five minutes wide, then widening): every row once, in the order results occurred. A result
    recorded once the first chunk is out, dated in the middle of them, is not in it."""
    from analytics import exports
    from quality.selection import Selection

    start = (timezone.now() - timedelta(days=3)).replace(microsecond=0)
    cells = list(proto_batch.cells.order_by("position"))
    for i, cell in enumerate(cells[:9]):  # the last cell first
        record(cell, stations["PR-STK-1"], occurred_at=start + timedelta(hours=5 * (8 - i)))
    selection = Selection(batch=proto_batch)
    expected = Measurement.objects.filter(run__cell__batch=proto_batch).count()

    chunks = exports.csv_chunks(selection)
    first = next(chunks)
    assert first.count(b"\n") == 1 + expected // 9  # the header and the first window's cell
    meanwhile = threading.Thread(  # another connection: this one is in the export's snapshot
        target=lambda: (
            record(cells[9], stations["PR-STK-1"], occurred_at=start + timedelta(hours=21)),
            connection.close(),
        )
    )
    meanwhile.start()
    meanwhile.join()
    assert ProcessRun.objects.filter(cell=cells[9]).count() == 0  # not seen here
    rows = list(csv.DictReader(io.StringIO((first + b"".join(chunks)).decode())))

    assert len(rows) == expected
    assert ProcessRun.objects.filter(cell=cells[9]).count() == 1  # recorded, after the snapshot
    assert cells[9].serial not in {row["serial"] for row in rows}
    keys = [(row["occurred_at"], row["serial"], row["parameter"]) for row in rows]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    assert [rows[0]["serial"], rows[-1]["serial"]] == [cells[8].serial, cells[0].serial]


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        ({"format": "parquet"}, {"format"}),
        ({"format": "csv", "line": "nowhere"}, {"line"}),
        ({"parameter": "no_such_reading"}, {"parameter"}),
        ({"parameter": "not a slug"}, {"parameter"}),
        ({"since": "2026-11-30T10:00:00Z", "until": "2026-11-30T09:00:00Z"}, {"until"}),
    ],
)
def test_bad_inputs_are_400_invalid(plant, api_as, operator, query, fields):
    response = api_as(operator).get("/api/v1/exports/measurements", query)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "invalid"
    assert set(response.json()["errors"]) == fields


def test_exports_need_a_viewer(plant, api_as, outsider):
    assert api_as(None).get("/api/v1/exports/measurements").status_code == 401
    response = api_as(outsider).get("/api/v1/exports/measurements", {"format": "xlsx"})
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


# ---------------------------------------------------------------- bounded memory


def test_a_large_csv_export_streams_in_bounded_memory(plant, quality_engineer, api_as, operator):
    """100,000 rows here; bench/bench_exports.py downloads 1,000,000 the same way and prints the
    figures (about a minute on 2 shared cores, too long for the suite)."""
    bulk_batch("PROTO-BULK", 1_000, quality_engineer)
    rows = Measurement.objects.filter(run__cell__batch__code="PROTO-BULK").count()
    assert rows > 100_000
    client = api_as(operator)
    query = {"batch": "PROTO-BULK", "step": "stacking"}
    # Once on a few rows, so that the modules the request imports on first use are not counted.
    assert b"bulk_reading_1" in b"".join(
        client.get(URL, {**query, "parameter": "bulk_reading_1"}).streaming_content
    )

    figures = download(client, query, traced=True)

    assert figures["status"] == 200
    assert figures["lines"] == 1 + rows  # the header, then a row per reading
    # Over 15 MB exported; Python held under a megabyte and a half of it at any time.
    assert figures["bytes"] > 15_000_000
    assert figures["python_peak"] < 1_500_000
    assert figures["rss_growth"] < 16_000_000
