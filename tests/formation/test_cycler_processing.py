"""A formation cycler file uploaded for a cell is parsed by the worker into formation
measurements and curves and judged against the recipe; a file that cannot be trusted is
rejected with the name of the failed check."""

from __future__ import annotations

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from batches.models import Curve
from formation.cycler import read_cycler_file
from stations.models import InboxEntry

from .samples import SAMPLES  # noqa: E402

URL = "/api/v1/station/cycler-files"


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


@pytest.fixture
def pressed_cell(proto_batch, stations, record):
    cell = proto_batch.cells.get(position=1)
    record(cell, stations["PR-STK-1"])
    record(cell, stations["PR-PRS-1"], equipment_ref="L1")
    return cell


def _upload(station_client, cell, content: bytes, name: str, event_id: str = "FRM-1"):
    former = station_client("PR-FRM-1")
    data = {"file": SimpleUploadedFile(name, content), "cell": cell.serial, "event_id": event_id}
    return former.http.post(URL, data, format="multipart")


def test_a_bitrode_file_is_parsed_into_formation_measurements_and_curves(
    pressed_cell, station_client, process_pending
):
    sample = SAMPLES / "leaf_cell_discharge_1c_bitrode.csv"
    if not sample.exists():
        pytest.skip(f"sample data not found at {SAMPLES}")
    assert _upload(station_client, pressed_cell, sample.read_bytes(), "run.csv").status_code == 202

    process_pending()

    entry = InboxEntry.objects.get(event_id="FRM-1")
    assert entry.status == "processed", entry.reason
    assert entry.payload["parser"] == "mes-csv 1" and entry.payload["detected_format"] == "csv"
    assert len(entry.payload["sha256"]) == 64
    run = entry.run
    assert run.step.station_kind == "formation"
    measured = {m.name: m.value for m in run.measurements.all()}
    # Independent check: the file's own voltage range, read with numpy from the raw columns.
    raw = np.genfromtxt(sample, delimiter=",", names=True, usecols=(9,))
    assert measured["max_voltage_v"] == pytest.approx(float(np.nanmax(raw["VoltageV"])))
    assert measured["min_voltage_v"] == pytest.approx(float(np.nanmin(raw["VoltageV"])))
    assert {
        "first_charge_capacity_ah",
        "first_discharge_capacity_ah",
        "discharge_energy_wh",
    } <= set(measured)
    # A 33 Ah Leaf cell is far above the 5 Ah design: the data is kept and the cell judged.
    assert entry.outcome == "fail"
    assert any(v["parameter"] == "first_charge_capacity_ah" for v in entry.violations)
    curves = {c.name: c for c in Curve.objects.filter(run=run)}
    assert curves["voltage_vs_capacity"].x_name == "capacity_ah"
    assert 0 < len(curves["voltage"].x) <= 2002
    assert len(read_cycler_file(sample).time_s) > len(curves["voltage"].x)


def test_a_truncated_file_is_rejected_naming_the_check(
    pressed_cell, station_client, process_pending
):
    sample = SAMPLES / "neware_cccv.ndax"
    if not sample.exists():
        pytest.skip(f"sample data not found at {SAMPLES}")
    content = sample.read_bytes()
    assert (
        _upload(station_client, pressed_cell, content[: len(content) // 2], "run.ndax").status_code
        == 202
    )

    process_pending()

    entry = InboxEntry.objects.get(event_id="FRM-1")
    assert entry.status == "rejected"
    assert entry.reason_code == "truncated"
    assert entry.run is None
    pressed_cell.refresh_from_db()
    assert pressed_cell.next_step.station_kind == "formation"


def test_the_cell_page_plots_the_parsed_curves_against_time_and_capacity(
    pressed_cell, station_client, process_pending, client, line_engineer
):
    sample = SAMPLES / "leaf_cell_discharge_1c_bitrode.csv"
    if not sample.exists():
        pytest.skip(f"sample data not found at {SAMPLES}")
    _upload(station_client, pressed_cell, sample.read_bytes(), "run.csv")
    process_pending()
    client.force_login(line_engineer)
    page = client.get(f"/cells/{pressed_cell.serial}/").content.decode()
    assert "voltage (V) vs time (s)" in page
    assert "voltage vs capacity (V) vs capacity (Ah)" in page
    assert '"x_label": "capacity (Ah)"' in page  # the chart's axis title
