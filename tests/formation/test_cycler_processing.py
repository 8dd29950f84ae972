"""A formation cycler file uploaded for a cell is parsed by the worker into formation
measurements and curves and judged against the recipe; a file that cannot be trusted is
rejected with the name of the failed check."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from batches.models import Curve
from formation.cycler import read_cycler_file
from stations.models import InboxEntry

from . import synthetic, vendor_files
from .samples import SAMPLES  # noqa: E402
from .test_vendor_files import FIVE_CYCLES

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


# --- every cycle, incomplete half cycles and the file's own clock, through the upload ------------


def test_an_incomplete_first_discharge_is_not_a_capacity_and_fails_as_missing(
    pressed_cell, station_client, process_pending, tmp_path
):
    # The file ends 40 minutes into the first discharge.
    curve = synthetic.build(
        synthetic.FORMATION[:6] + [("cc discharge", 2400, -0.5, -0.5, 4.1, 3.75)]
    )
    content = synthetic.write_csv(curve, tmp_path / "cut.csv").read_bytes()
    assert _upload(station_client, pressed_cell, content, "cut.csv").status_code == 202

    process_pending()

    entry = InboxEntry.objects.get(event_id="FRM-1")
    assert entry.status == "processed", entry.reason
    measured = {m.name: m.value for m in entry.run.measurements.all()}
    assert measured["first_discharge_complete"] == 0.0
    assert measured["first_charge_complete"] == 1.0
    assert "first_discharge_capacity_ah" not in measured
    assert "initial_coulombic_efficiency" not in measured
    # The recipe requires the capacity: the cell fails on it as missing, not on a partial value.
    missing = {v["parameter"] for v in entry.violations if v["problem"] == "missing"}
    assert "first_discharge_capacity_ah" in missing
    assert entry.outcome == "fail"


def test_the_run_is_dated_by_the_files_own_clock(
    pressed_cell, station_client, process_pending, tmp_path, settings
):
    curve = synthetic.build(FIVE_CYCLES, shared_boundaries=False)
    start = datetime(2025, 11, 2, 8, 30, 0)  # noqa: DTZ001  the cycler's local clock, no zone
    path = vendor_files.write_arbin_csv(curve, tmp_path / "five.csv", start)
    response = _upload(station_client, pressed_cell, path.read_bytes(), "five.csv")
    assert response.status_code == 202

    process_pending()

    entry = InboxEntry.objects.get(event_id="FRM-1")
    assert entry.status == "processed", entry.reason
    assert entry.payload["detected_format"] == "arbin_csv"
    assert entry.payload["timed_by"] == "file"
    run = entry.run
    local = ZoneInfo(settings.TIME_ZONE)
    assert run.started_at == start.replace(tzinfo=local)
    duration = timedelta(seconds=float(curve.time_s[-1] - curve.time_s[0]))
    assert run.finished_at == start.replace(tzinfo=local) + duration
    measured = {m.name: m.value for m in run.measurements.all()}
    assert measured["cycles"] == 5.0
    curves = {c.name: c for c in Curve.objects.filter(run=run)}
    per_cycle = curves["discharge_capacity_per_cycle"]
    assert per_cycle.x == [1.0, 2.0, 3.0, 4.0, 5.0] and per_cycle.x_label == "cycle"
    assert per_cycle.unit == "Ah"
    assert measured["capacity_retention_last"] == pytest.approx(per_cycle.y[4] / per_cycle.y[0])
    assert curves["dqdv_first_charge"].x_name == "voltage_v"
    assert curves["dqdv_first_charge"].x_label == "voltage (V)"
    assert {f"voltage_vs_capacity_cycle_{n}" for n in (2, 3, 4, 5)} <= set(curves)
    assert curves["current"].unit == "A"


def test_a_file_whose_clock_is_ahead_of_its_receipt_is_dated_by_the_receipt(
    pressed_cell, station_client, process_pending, tmp_path
):
    curve = synthetic.build(synthetic.FORMATION, shared_boundaries=False)
    ahead = datetime.now() + timedelta(days=30)  # noqa: DTZ005  a cycler PC with a wrong clock
    path = vendor_files.write_arbin_csv(curve, tmp_path / "ahead.csv", ahead)
    _upload(station_client, pressed_cell, path.read_bytes(), "ahead.csv")

    process_pending()

    entry = InboxEntry.objects.get(event_id="FRM-1")
    assert entry.status == "processed", entry.reason
    assert entry.payload["timed_by"] == "receipt"
    assert entry.run.started_at is None
    assert entry.run.finished_at == entry.received_at


def test_an_mpt_named_by_its_short_format_name_is_read_as_biologic(
    pressed_cell, station_client, process_pending, tmp_path
):
    curve = synthetic.build(synthetic.FORMATION)
    columns = vendor_files.mpr_columns(curve, synthetic.FORMATION)
    names = ["mode", "ox/red", "error", "Ns", "time/s", "control/V/mA", "Ewe/V", "I/mA"]
    path = vendor_files.write_mpt(columns, names, tmp_path / "c.mpt", datetime(2025, 1, 5))  # noqa: DTZ001
    former = station_client("PR-FRM-1")
    data = {
        "file": SimpleUploadedFile("export.txt", path.read_bytes()),
        "cell": pressed_cell.serial,
        "event_id": "FRM-1",
        "format": "mpt",
    }
    assert former.http.post(URL, data, format="multipart").status_code == 202

    process_pending()

    entry = InboxEntry.objects.get(event_id="FRM-1")
    assert entry.status == "processed", entry.reason
    assert entry.payload["format"] == "biologic_mpt"
    assert entry.payload["detected_format"] == "biologic_mpt"
    measured = {m.name: m.value for m in entry.run.measurements.all()}
    assert measured["first_charge_capacity_ah"] == pytest.approx(synthetic.Q_CHARGE_1, rel=1e-6)
