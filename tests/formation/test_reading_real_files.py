"""Every real sample file parses; values are checked against the raw columns read here directly.

Expected values are recomputed in each test from the vendor's own columns (csv module for text,
galvani's record array for .mpr, fastnda's frame for .ndax), never copied from the parser's output.
Capacities and energies are compared with the vendors' own columns within 0.5 %, or one sample
interval of current at each end of the half cycle where that is more: the cyclers integrate
internally at a higher rate than they log (a 1 s current ramp logged as 5 rows is integrated
exactly by Arbin, approximately by the trapezoid over the logged rows), and they count the
interval in which a step switched on or off by their own rule, we by the trapezoid over the half
cycle's own rows (see batches/cycler/features.py).
"""

from __future__ import annotations

import csv
import importlib.metadata
from pathlib import Path

import numpy as np
import pytest

from formation.cycler import formation_features, half_cycles, read_cycler_file

from .samples import SAMPLES  # noqa: E402

DATA = SAMPLES
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason=f"sample folder {DATA} is absent")

VENDOR_REL = 5e-3

EXPECTED_FORMAT = {
    "biologic_small.mpr": "biologic_mpr",
    "neware_cccv.ndax": "neware_ndax",
    "arbin_example.csv": "arbin_csv",
    "maccor_formation_header.001": "maccor_txt",
    "leaf_cell_discharge_1c_bitrode.csv": "csv",
}


def sample_files() -> list[Path]:
    if not DATA.is_dir():
        return []
    return sorted(p for p in DATA.iterdir() if p.is_file() and p.name != "README.md")


def version(name: str) -> str:
    return importlib.metadata.version(name)


def first_run(sign_of_row: np.ndarray, sign: int, after: int = 0) -> tuple[int, int]:
    """(first, last) row of the first run of `sign` at or after row `after`, where the run ends
    at the first row of the opposite sign (rows of sign 0 are rest and do not end it)."""
    rows = np.flatnonzero(sign_of_row[after:] == sign) + after
    first = int(rows[0])
    opposite = np.flatnonzero(sign_of_row[first:] == -sign)
    end = first + int(opposite[0]) if opposite.size else sign_of_row.size
    last = first + int(np.flatnonzero(sign_of_row[first:end] == sign)[-1])
    return first, last


def boundary_tolerance_ah(time_s: np.ndarray, current: np.ndarray, first: int, last: int) -> float:
    """One sample interval of current at each end of rows first..last."""
    before = (time_s[first] - time_s[first - 1]) if first > 0 else 0.0
    after = (time_s[last + 1] - time_s[last]) if last + 1 < time_s.size else 0.0
    return (abs(current[first]) * before + abs(current[last]) * after) / 3600 + 1e-12


@pytest.mark.parametrize("path", sample_files(), ids=lambda p: p.name)
def test_every_sample_parses_with_one_sign_convention(path):
    data = read_cycler_file(path)
    assert data.format == EXPECTED_FORMAT.get(path.name, data.format)
    assert data.rows == data.time_s.size == data.voltage_v.size == data.current_a.size > 0
    assert data.step.dtype == np.int64 and data.cycle.dtype == np.int64
    assert data.time_s.dtype == np.float64 and np.all(np.diff(data.time_s) >= 0)
    features = formation_features(data)
    assert features["rows"] == float(data.rows)
    assert features["min_voltage_v"] <= features["max_voltage_v"]


def test_the_sample_folder_holds_the_documented_files():
    assert {p.name for p in sample_files()} >= set(EXPECTED_FORMAT)


# --- Arbin: CSV, s / A / V / Ah / Wh / degC, current signed with charge positive -----------------


def read_arbin_raw() -> dict[str, np.ndarray]:
    with (DATA / "arbin_example.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {key: np.array([float(r[key]) for r in rows]) for key in rows[0]}


def test_arbin_columns_units_and_sign():
    raw = read_arbin_raw()
    data = read_cycler_file(DATA / "arbin_example.csv")
    assert data.parser == "mes-csv 1"
    assert data.rows == raw["Data_Point"].size
    assert data.time_s[0] == raw["Test_Time"][0] and data.time_s[-1] == raw["Test_Time"][-1]
    np.testing.assert_array_equal(data.voltage_v, raw["Voltage"])
    np.testing.assert_array_equal(data.temperature_c, raw["Temperature"])
    np.testing.assert_array_equal(data.step, raw["Step_Index"].astype(int))
    np.testing.assert_array_equal(data.cycle, raw["Cycle_Index"].astype(int))
    # Sign: where Arbin's running charge total grows the current is positive, where its
    # discharge total grows it is negative (rows that start a new step are left out: Arbin books
    # the interval before them to the totals of the step that just ended).
    same_step = np.diff(raw["Step_Index"]) == 0
    charging = (np.diff(raw["Charge_Capacity"]) > 1e-6) & same_step
    discharging = (np.diff(raw["Discharge_Capacity"]) > 1e-6) & same_step
    assert charging.any() and discharging.any()
    assert np.all(data.current_a[1:][charging] > 0)
    assert np.all(data.current_a[1:][discharging] < 0)


def test_arbin_first_cycle_against_the_vendor_capacity_columns():
    raw = read_arbin_raw()
    features = formation_features(read_cycler_file(DATA / "arbin_example.csv"))
    t, current = raw["Test_Time"], raw["Current"]
    sign = np.where(np.abs(current) > 0.01, np.sign(current), 0).astype(int)
    c0, c1 = first_run(sign, +1)
    d0, d1 = first_run(sign, -1, after=c1)
    q_charge = raw["Charge_Capacity"][c1] - raw["Charge_Capacity"][c0 - 1]
    q_discharge = raw["Discharge_Capacity"][d1] - raw["Discharge_Capacity"][d0 - 1]
    e_discharge = raw["Discharge_Energy"][d1] - raw["Discharge_Energy"][d0 - 1]
    assert features["first_charge_capacity_ah"] == pytest.approx(
        q_charge, rel=VENDOR_REL, abs=boundary_tolerance_ah(t, current, c0, c1)
    )
    assert features["first_discharge_capacity_ah"] == pytest.approx(
        q_discharge, rel=VENDOR_REL, abs=boundary_tolerance_ah(t, current, d0, d1)
    )
    assert features["discharge_energy_wh"] == pytest.approx(e_discharge, rel=VENDOR_REL)
    assert features["initial_coulombic_efficiency"] == pytest.approx(
        features["first_discharge_capacity_ah"] / features["first_charge_capacity_ah"]
    )
    # The file starts in the middle of a charge (Charge_Capacity is already 0.88 Ah on row 1),
    # so its "first charge" is a partial one and the ICE is far above 1: reported as measured.
    assert raw["Charge_Capacity"][0] > 0.5 and features["initial_coulombic_efficiency"] > 2
    # Cycle 2 is complete: its CE from Arbin's per-cycle totals, within 1 %.
    last_of_cycle_2 = np.flatnonzero(raw["Cycle_Index"] == 2)[-1]
    vendor_ce = raw["Discharge_Capacity"][last_of_cycle_2] / raw["Charge_Capacity"][last_of_cycle_2]
    assert features["later_coulombic_efficiency"] == pytest.approx(vendor_ce, rel=1e-2)
    assert features["max_temperature_c"] == raw["Temperature"].max()
    assert features["min_voltage_v"] == raw["Voltage"].min()
    assert features["max_voltage_v"] == raw["Voltage"].max()
    steps = np.diff(t)[np.diff(t) > 0]
    assert features["max_gap_intervals"] == pytest.approx(steps.max() / np.median(steps))


# --- Bitrode: plain CSV, s / A / V / Ah / Wh, current signed with charge positive ----------------


def read_bitrode_raw() -> tuple[dict[str, np.ndarray], np.ndarray]:
    with (DATA / "leaf_cell_discharge_1c_bitrode.csv").open(newline="") as handle:
        rows = list(csv.reader(handle))
    header, body = rows[0], rows[1:]
    column = {name: header.index(name) for name in header if name}
    numbers = {
        name: np.array([float(r[i]) for r in body])
        for name, i in column.items()
        if name not in ("Exclude", "Mode", "Data", "Loop")
    }
    return numbers, np.array([r[column["Mode"]] for r in body])


def test_bitrode_columns_units_sign_and_first_cycle():
    raw, mode = read_bitrode_raw()
    data = read_cycler_file(DATA / "leaf_cell_discharge_1c_bitrode.csv")
    assert data.parser == "mes-csv 1" and data.temperature_c is None
    assert data.rows == mode.size
    assert data.time_s[0] == raw["Time(s)"][0] and data.time_s[-1] == raw["Time(s)"][-1]
    np.testing.assert_array_equal(data.current_a, raw["Current(A)"])
    np.testing.assert_array_equal(data.voltage_v, raw["Voltage(V)"])
    assert np.all(data.current_a[mode == "CHRG"] > 0)
    assert np.all(data.current_a[mode == "DCHG"] < 0)

    features = formation_features(data)
    # Bitrode's Capacity(Ah) restarts at each step and is written to 0.01 Ah, signed like current.
    charge_rows = np.flatnonzero(mode == "CHRG")
    c0 = int(charge_rows[0])
    c1 = c0 + int(np.flatnonzero(mode[c0:] != "CHRG")[0]) - 1
    d0 = c1 + int(np.flatnonzero(mode[c1:] == "DCHG")[0])
    d1 = d0 + int(np.flatnonzero(mode[d0:] != "DCHG")[0]) - 1
    t, current = raw["Time(s)"], raw["Current(A)"]
    rounding = 0.005
    assert features["first_charge_capacity_ah"] == pytest.approx(
        raw["Capacity(Ah)"][c1],
        rel=VENDOR_REL,
        abs=rounding + boundary_tolerance_ah(t, current, c0, c1),
    )
    assert features["first_discharge_capacity_ah"] == pytest.approx(
        -raw["Capacity(Ah)"][d1],
        rel=VENDOR_REL,
        abs=rounding + boundary_tolerance_ah(t, current, d0, d1),
    )
    # Bitrode integrates energy internally at a higher rate than the 1-60 s it logs.
    assert features["discharge_energy_wh"] == pytest.approx(-raw["Energy(Wh)"][d1], rel=VENDOR_REL)
    assert 3.6 < features["average_discharge_voltage_v"] < 3.9  # NMC/LMO Leaf cell at 1C
    assert features["max_gap_intervals"] == pytest.approx(60.0)  # logs 1 s, and 60 s when quiet
    assert features["soft_short_events"] == 0
    assert features["later_coulombic_efficiency"] == pytest.approx(1.0, abs=5e-3)


# --- Maccor: tab-separated text, minutes / A (unsigned, State C/D/R) / V -------------------------


def test_maccor_columns_units_and_minutes():
    path = DATA / "maccor_formation_header.001"
    with path.open(newline="", encoding="latin-1") as handle:
        lines = handle.read().splitlines()
    rows = list(csv.DictReader(lines[1:], delimiter="\t"))
    data = read_cycler_file(path)
    assert data.format == "maccor_txt" and data.parser == "mes-csv 1"
    assert data.rows == len(rows)
    minutes = np.array([float(r["Test (Min)"]) for r in rows])
    np.testing.assert_allclose(data.time_s, minutes * 60.0)
    np.testing.assert_array_equal(data.voltage_v, [float(r["Volts"]) for r in rows])
    np.testing.assert_array_equal(data.step, [int(r["Step"]) for r in rows])
    np.testing.assert_array_equal(data.cycle, [int(r["Cyc#"]) for r in rows])
    assert {r["State"] for r in rows} == {"R"} and np.all(data.current_a == 0)
    features = formation_features(data)
    assert "first_charge_capacity_ah" not in features  # the header sample is all rest
    assert features["max_voltage_v"] == max(float(r["Volts"]) for r in rows)


def test_maccor_unsigned_amps_take_their_sign_from_state(tmp_path):
    header = (DATA / "maccor_formation_header.001").read_bytes().splitlines()[:2]
    body = [
        "1\t1\t2\t0.0000\t0.0000\t0.0\t0.0\t0.0500000000\t3.40\tC\t0\t03/31/2016 16:05:31",
        "2\t1\t2\t1.0000\t1.0000\t0.0\t0.0\t0.0500000000\t3.50\tC\t0\t03/31/2016 16:06:31",
        "3\t1\t3\t1.0000\t0.0000\t0.0\t0.0\t0.0500000000\t3.45\tD\t0\t03/31/2016 16:06:31",
        "4\t1\t3\t2.0000\t1.0000\t0.0\t0.0\t0.0500000000\t3.30\tD\t0\t03/31/2016 16:07:31",
    ]
    path = tmp_path / "signed.001"
    path.write_bytes(b"\r\n".join(header + [line.encode() for line in body]) + b"\r\n")
    data = read_cycler_file(path)
    np.testing.assert_array_equal(data.current_a, [0.05, 0.05, -0.05, -0.05])
    np.testing.assert_array_equal(data.time_s, [0.0, 60.0, 60.0, 120.0])


# --- BioLogic .mpr via galvani: s / V / mA, I positive = oxidation at the WE = charge ------------


def test_biologic_against_galvanis_record_array():
    from galvani import BioLogic

    path = DATA / "biologic_small.mpr"
    with path.open("rb") as handle:
        records = np.array(BioLogic.MPRfile(handle).data)
    data = read_cycler_file(path)
    assert data.format == "biologic_mpr" and data.parser == f"galvani {version('galvani')}"
    assert data.rows == records.size
    assert data.time_s[0] == records["time/s"][0] and data.time_s[-1] == records["time/s"][-1]
    np.testing.assert_allclose(data.voltage_v, records["Ewe/V"].astype(float))
    np.testing.assert_allclose(data.current_a, records["I/mA"].astype(float) / 1000.0)  # mA -> A
    np.testing.assert_array_equal(data.step, records["Ns"])
    # EC-Lab's charge increment dq has the sign of the current: our sign is EC-Lab's.
    moving = records["dq/mA.h"] != 0
    assert np.all(np.sign(data.current_a[moving]) == np.sign(records["dq/mA.h"][moving]))
    # The whole file is one reduction (discharge); its charge from EC-Lab's own (Q-Qo) column.
    (only,) = half_cycles(data)
    assert only.sign == -1 and not only.complete
    q_vendor_ah = abs(records["(Q-Qo)/mA.h"][-1] - records["(Q-Qo)/mA.h"][0]) / 1000.0
    assert only.capacity_ah == pytest.approx(q_vendor_ah, rel=1e-3)
    features = formation_features(data)
    assert "first_charge_capacity_ah" not in features  # no charge in the file
    assert features["min_voltage_v"] == pytest.approx(float(records["Ewe/V"].min()))


# --- Neware .ndax via fastnda: s / V / mA, fastnda signs discharge negative ----------------------


def test_neware_against_fastnda_directly():
    import fastnda

    path = DATA / "neware_cccv.ndax"
    frame = fastnda.read(path)
    data = read_cycler_file(path)
    assert data.format == "neware_ndax" and data.parser == f"fastnda {version('fastnda')}"
    assert data.rows == frame.height
    t = frame["total_time_s"].to_numpy()
    current_ma = frame["current_mA"].to_numpy().astype(float)
    assert data.time_s[0] == t[0] and data.time_s[-1] == t[-1]
    np.testing.assert_allclose(data.current_a, current_ma / 1000.0)  # mA -> A
    np.testing.assert_allclose(data.voltage_v, frame["voltage_V"].to_numpy().astype(float))
    step_type = frame["step_type"].cast(str).to_numpy()
    charge, discharge = step_type == "CCCV_Chg", step_type == "CCCV_DChg"
    assert charge.any() and discharge.any()
    assert np.all(data.current_a[charge] > 0) and np.all(data.current_a[discharge] < 0)

    features = formation_features(data)
    capacity_mah = frame["capacity_mAh"].to_numpy().astype(float)
    energy_mwh = frame["energy_mWh"].to_numpy().astype(float)
    c0, c1 = np.flatnonzero(charge)[[0, -1]]
    d0, d1 = np.flatnonzero(discharge)[[0, -1]]
    amps = current_ma / 1000.0
    assert features["first_charge_capacity_ah"] == pytest.approx(
        capacity_mah[c1] / 1000.0, rel=VENDOR_REL, abs=boundary_tolerance_ah(t, amps, c0, c1)
    )
    assert features["first_discharge_capacity_ah"] == pytest.approx(
        -capacity_mah[d1] / 1000.0, rel=VENDOR_REL, abs=boundary_tolerance_ah(t, amps, d0, d1)
    )
    assert features["discharge_energy_wh"] == pytest.approx(
        -energy_mwh[d1] / 1000.0, rel=VENDOR_REL
    )
    assert features["min_voltage_v"] == pytest.approx(float(frame["voltage_V"].min()))
    assert features["max_voltage_v"] == pytest.approx(float(frame["voltage_V"].max()))


def test_bitrode_every_cycle_against_the_vendor_capacity_column():
    from formation.cycler import analyse

    raw, mode = read_bitrode_raw()
    t, current = raw["Time(s)"], raw["Current(A)"]
    # Bitrode's per-step Capacity(Ah) at the last row of each CHRG and DCHG run, signed like I.
    runs = []
    for word in ("CHRG", "DCHG"):
        rows = np.flatnonzero(mode == word)
        breaks = np.flatnonzero(np.diff(rows) > 1)
        firsts, lasts = np.r_[rows[0], rows[breaks + 1]], np.r_[rows[breaks], rows[-1]]
        runs += [(int(a), int(b), word) for a, b in zip(firsts, lasts, strict=True)]
    runs.sort()
    charges = [(a, b) for a, b, w in runs if w == "CHRG"]
    discharges = [(a, b) for a, b, w in runs if w == "DCHG"]
    cycles = analyse(read_cycler_file(DATA / "leaf_cell_discharge_1c_bitrode.csv")).cycles
    assert len(cycles) == len(charges) and len(discharges) == len(charges) - 1
    rounding = 0.005  # Capacity(Ah) is written to 0.01 Ah
    for cycle, (c0, c1) in zip(cycles, charges, strict=True):
        assert cycle.charge_capacity_ah == pytest.approx(
            raw["Capacity(Ah)"][c1],
            rel=VENDOR_REL,
            abs=rounding + boundary_tolerance_ah(t, current, c0, c1),
        )
    for cycle, (d0, d1) in zip(cycles, discharges, strict=False):
        assert cycle.discharge_capacity_ah == pytest.approx(
            -raw["Capacity(Ah)"][d1],
            rel=VENDOR_REL,
            abs=rounding + boundary_tolerance_ah(t, current, d0, d1),
        )
        assert cycle.discharge_energy_wh == pytest.approx(-raw["Energy(Wh)"][d1], rel=VENDOR_REL)
    first = -raw["Capacity(Ah)"][discharges[0][1]]
    last = -raw["Capacity(Ah)"][discharges[-1][1]]
    retention = cycles[len(discharges) - 1].capacity_retention
    assert retention == pytest.approx(last / first, abs=0.01)
    # The file ends with a charge and no discharge after it: a cycle without a discharge.
    assert cycles[-1].discharge is None and cycles[-1].discharge_capacity_ah is None
