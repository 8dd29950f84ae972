"""Files that cannot be trusted as data are rejected with a check code and a detail naming where."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import numpy as np
import pytest

from formation.cycler import CyclerFileRejected, read_cycler_file

from .samples import SAMPLES  # noqa: E402

DATA = SAMPLES
needs_samples = pytest.mark.skipif(not DATA.is_dir(), reason=f"sample folder {DATA} is absent")

GOOD_CSV = "time,voltage,current\n0,3.00,0.5\n10,3.01,0.5\n20,3.02,0.5\n30,3.03,0.5\n"


def rejected(path: Path, **kwargs) -> CyclerFileRejected:
    with pytest.raises(CyclerFileRejected) as caught:
        read_cycler_file(path, **kwargs)
    error = caught.value
    assert isinstance(error, Exception) and error.check in str(error)
    assert path.name in error.detail  # every detail says which file, then what and where
    return error


@needs_samples
@pytest.mark.parametrize("name", ["biologic_small.mpr", "neware_cccv.ndax"])
def test_a_binary_file_cut_in_half_is_truncated(tmp_path, name):
    raw = (DATA / name).read_bytes()
    path = tmp_path / name
    path.write_bytes(raw[: len(raw) // 2])
    error = rejected(path)
    assert error.check == "truncated"
    assert str(len(raw) // 2) in error.detail  # names the byte where the file stops


@needs_samples
@pytest.mark.parametrize(
    "name",
    ["arbin_example.csv", "leaf_cell_discharge_1c_bitrode.csv", "maccor_formation_header.001"],
)
def test_a_text_export_cut_mid_line_is_truncated(tmp_path, name):
    raw = (DATA / name).read_bytes()
    line_start = raw.rindex(b"\n", 0, len(raw) // 2) + 1
    cut = line_start + 7  # a few characters into a data row
    path = tmp_path / name
    path.write_bytes(raw[:cut])
    error = rejected(path)
    assert error.check == "truncated"
    line_number = raw[:cut].count(b"\n") + 1
    assert f"line {line_number}" in error.detail


def test_a_csv_whose_last_value_is_cut_inside_a_number_is_truncated(tmp_path):
    path = tmp_path / "cut.csv"
    path.write_text(GOOD_CSV + "40,3.04,0.5e")  # all fields present, the last one cut short
    error = rejected(path)
    assert error.check == "truncated" and "line 6" in error.detail


@pytest.mark.parametrize("content", [b"", b"\n \r\n\t\n"])
def test_an_empty_file_is_empty(tmp_path, content):
    path = tmp_path / "upload.csv"
    path.write_bytes(content)
    assert rejected(path).check == "empty"


def test_a_header_without_rows_is_empty(tmp_path):
    path = tmp_path / "header_only.csv"
    path.write_text("time,voltage,current\n")
    error = rejected(path)
    assert error.check == "empty" and "line 1" in error.detail


def test_random_bytes_are_an_unknown_format(tmp_path):
    path = tmp_path / "noise.mpr"
    path.write_bytes(random.Random(7).randbytes(4096))
    error = rejected(path)
    assert error.check == "unknown_format" and "offset" in error.detail


def test_prose_is_an_unknown_format(tmp_path):
    path = tmp_path / "notes.csv"
    path.write_text("Cell 17 looked fine.\nNo data here.\n")
    error = rejected(path)
    assert error.check == "unknown_format" and "Cell 17" in error.detail


def test_a_zip_that_is_not_ndax_is_an_unknown_format(tmp_path):
    source = tmp_path / "notes.txt"
    source.write_text("not cycler data")
    archive = Path(shutil.make_archive(str(tmp_path / "bundle"), "zip", tmp_path, "notes.txt"))
    renamed = archive.rename(tmp_path / "bundle.ndax")
    error = rejected(renamed)
    assert error.check == "unknown_format" and "data.ndc" in error.detail


def test_time_going_backwards_names_the_row(tmp_path):
    path = tmp_path / "backwards.csv"
    path.write_text(GOOD_CSV + "25,3.04,0.5\n40,3.05,0.5\n")
    error = rejected(path)
    assert error.check == "time_not_monotonic"
    assert "data row 5 (line 6)" in error.detail and "25 s after 30 s" in error.detail


def test_repeated_timestamps_are_allowed(tmp_path):
    # Neware and Maccor log a step's first row at the previous row's time.
    path = tmp_path / "repeat.csv"
    path.write_text(GOOD_CSV + "30,3.03,-0.5\n40,2.90,-0.5\n")
    assert read_cycler_file(path).rows == 6


def test_a_csv_without_voltage_names_the_missing_column(tmp_path):
    path = tmp_path / "no_voltage.csv"
    path.write_text("Time(s),Current(A),Temperature(C)\n0,0.5,25\n10,0.5,25\n")
    error = rejected(path)
    assert error.check == "missing_columns"
    assert "voltage" in error.detail and "Time(s), Current(A), Temperature(C)" in error.detail


def test_a_unit_we_cannot_convert_is_unknown_units(tmp_path):
    path = tmp_path / "units.csv"
    path.write_text("Time(s),Voltage(V),Current(kA)\n0,3.0,0.001\n")
    error = rejected(path)
    assert error.check == "unknown_units" and "Current(kA)" in error.detail


def test_stated_units_are_converted(tmp_path):
    path = tmp_path / "units.csv"
    path.write_text("Time(min),Voltage(mV),Current(mA),Temperature(K)\n0,3000,500,298.15\n"
                    "1,3100,-250,300.15\n")  # fmt: skip
    data = read_cycler_file(path)
    np.testing.assert_allclose(data.time_s, [0.0, 60.0])
    np.testing.assert_allclose(data.voltage_v, [3.0, 3.1])
    np.testing.assert_allclose(data.current_a, [0.5, -0.25])
    np.testing.assert_allclose(data.temperature_c, [25.0, 27.0])


def test_a_value_that_is_not_a_number_names_row_and_column(tmp_path):
    path = tmp_path / "garbled.csv"
    path.write_text(GOOD_CSV.replace("10,3.01,0.5", "10,#REF!,0.5"))
    error = rejected(path)
    assert error.check == "unreadable"
    assert "data row 2 (line 3)" in error.detail and "'voltage'" in error.detail


@needs_samples
def test_a_renamed_mpr_is_still_read_as_biologic(tmp_path):
    path = tmp_path / "cell_0042.csv"
    shutil.copyfile(DATA / "biologic_small.mpr", path)
    assert read_cycler_file(path).format == "biologic_mpr"


@needs_samples
def test_a_renamed_ndax_is_still_read_as_neware(tmp_path):
    path = tmp_path / "cell_0042.dat"
    shutil.copyfile(DATA / "neware_cccv.ndax", path)
    data = read_cycler_file(path)
    assert data.format == "neware_ndax" and data.rows > 0


@needs_samples
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("arbin_example.csv", "arbin_csv"),
        ("leaf_cell_discharge_1c_bitrode.csv", "csv"),
        ("maccor_formation_header.001", "maccor_txt"),
    ],
)
def test_a_csv_saved_as_mpr_is_read_as_what_it_is(tmp_path, name, expected):
    path = tmp_path / "upload.mpr"
    shutil.copyfile(DATA / name, path)
    assert read_cycler_file(path).format == expected


@needs_samples
def test_a_stated_format_that_does_not_match_the_content_is_rejected(tmp_path):
    error = rejected(DATA / "arbin_example.csv", format="neware_ndax")
    assert error.check == "unreadable" and "signature" in error.detail
    error = rejected(DATA / "biologic_small.mpr", format="csv")
    assert error.check == "unreadable" and "binary" in error.detail


def test_an_unknown_format_name_is_a_programming_error(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text(GOOD_CSV)
    with pytest.raises(ValueError, match="format must be one of"):
        read_cycler_file(path, format="excel")


def test_a_missing_file_is_unreadable(tmp_path):
    error = rejected(tmp_path / "gone.csv")
    assert error.check == "unreadable" and "gone.csv" in error.detail


# --- the fast reader and the careful one agree; the careful one names what the fast one refuses --


def text_samples() -> list[Path]:
    return (
        sorted(p for p in DATA.glob("*") if p.suffix in (".csv", ".001")) if DATA.is_dir() else []
    )


@pytest.mark.parametrize("path", text_samples(), ids=lambda p: p.name)
def test_both_text_readers_read_the_same_columns(path):
    from formation.cycler import text

    head = path.read_bytes()[: 1 << 20]
    layout = text.find_layout(path, head)
    words = {"state": text.state_signs}
    fast, fast_labels, fast_stamp = text._read_table_fast(path, layout, words)
    careful, labels, stamp = text._read_table_checked(
        path, layout, optional=frozenset({"temperature"}), words=words
    )
    assert fast.keys() == careful.keys() and fast_stamp == stamp
    for key in fast:
        np.testing.assert_array_equal(fast[key], careful[key])
    last = len(fast["time"]) - 1
    assert fast_labels(last) == labels(last)


def test_a_semicolon_csv_with_decimal_commas_is_read(tmp_path):
    path = tmp_path / "eu.csv"
    path.write_text("Zeit;Time(s);Voltage(V);Current(mA)\nx;0;3,10;500\nx;10;3,25;500,5\n")
    data = read_cycler_file(path)
    np.testing.assert_allclose(data.voltage_v, [3.10, 3.25])
    np.testing.assert_allclose(data.current_a, [0.5, 0.5005])


def test_a_blank_voltage_in_a_large_file_names_its_row(tmp_path):
    rows = "".join(f"{k},3.{k % 10},0.5\n" for k in range(2000))
    path = tmp_path / "blank.csv"
    path.write_text("time,voltage,current\n" + rows.replace("1500,3.0,0.5", "1500,,0.5"))
    error = rejected(path)
    assert error.check == "unreadable" and "data row 1501 (line 1502)" in error.detail
