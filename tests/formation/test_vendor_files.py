"""Every vendor's file, written the way that vendor writes it, read back and its features checked
against a recomputation from the file's own raw columns, read here with the csv module, openpyxl
or galvani, integrated with plain numpy (never the reader's code), and against the synthetic
protocol's closed-form values."""

from __future__ import annotations

import csv
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from formation.cycler import (
    CyclerFileRejected,
    analyse,
    formation_curves,
    formation_features,
    read_cycler_file,
)

from . import synthetic, vendor_files
from .synthetic import FORMATION

# The cycler PC's local clock: vendors write it without a zone, so it is naive here too.
START = datetime(2024, 3, 14, 9, 15, 2, 250000)  # noqa: DTZ001

# A galvanostatic protocol (GCPL): CC only, two cycles.
GCPL: list[synthetic.Segment] = [
    ("rest", 600, 0.0, 0.0, 3.00, 3.00),
    ("cc charge", 7200, 0.5, 0.5, 3.00, 4.20),  # 1.0 Ah
    ("rest", 600, 0.0, 0.0, 4.20, 4.10),
    ("cc discharge", 6840, -0.5, -0.5, 4.10, 3.00),  # 0.95 Ah
    ("rest", 600, 0.0, 0.0, 3.00, 3.20),
    ("cc charge", 7020, 0.5, 0.5, 3.20, 4.20),  # 0.975 Ah
    ("rest", 600, 0.0, 0.0, 4.20, 4.10),
    ("cc discharge", 6804, -0.5, -0.5, 4.10, 3.00),  # 0.945 Ah
    ("rest", 300, 0.0, 0.0, 3.00, 3.10),
]
GCPL_Q = (1.0, 0.95, 0.975, 0.945)


def runs(sign: np.ndarray) -> list[tuple[int, int, int]]:
    """(sign, first, last) of each run of one non-zero sign; zero rows neither end nor split one."""
    out: list[tuple[int, int, int]] = []
    for k in np.flatnonzero(sign):
        s = int(sign[k])
        if out and out[-1][0] == s:
            out[-1] = (s, out[-1][1], int(k))
        else:
            out.append((s, int(k), int(k)))
    return out


def first_cycle(sign: np.ndarray) -> tuple[tuple[int, int], tuple[int, int]]:
    """Rows (first, last) of the first charge run and of the discharge run after it."""
    found = runs(sign)
    i = next(n for n, (s, _, _) in enumerate(found) if s > 0)
    return found[i][1:], found[i + 1][1:]


def trapezoid_ah(t: np.ndarray, amps: np.ndarray, rows: tuple[int, int]) -> float:
    a, b = rows
    return abs(float(np.trapezoid(amps[a : b + 1], t[a : b + 1]))) / 3600


def trapezoid_wh(
    t: np.ndarray, volts: np.ndarray, amps: np.ndarray, rows: tuple[int, int]
) -> float:
    a, b = rows
    return abs(float(np.trapezoid(volts[a : b + 1] * amps[a : b + 1], t[a : b + 1]))) / 3600


def check_first_cycle(features: dict, q_charge: float, q_dis: float, e_dis: float) -> None:
    assert features["first_charge_capacity_ah"] == pytest.approx(q_charge, rel=1e-6)
    assert features["first_discharge_capacity_ah"] == pytest.approx(q_dis, rel=1e-6)
    assert features["initial_coulombic_efficiency"] == pytest.approx(q_dis / q_charge, rel=1e-6)
    assert features["discharge_energy_wh"] == pytest.approx(e_dis, rel=1e-6)
    assert features["average_discharge_voltage_v"] == pytest.approx(e_dis / q_dis, rel=1e-6)
    assert features["first_charge_complete"] == features["first_discharge_complete"] == 1.0


# --- Arbin CSV and XLSX --------------------------------------------------------------------------


def read_arbin_csv(path: Path) -> dict[str, np.ndarray]:
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {key: np.array([float(r[key]) for r in rows]) for key in rows[0] if key != "Date_Time"}


def test_arbin_csv_first_cycle_from_its_raw_columns(tmp_path):
    curve = synthetic.build(FORMATION, shared_boundaries=False)  # Arbin logs on one grid
    path = vendor_files.write_arbin_csv(curve, tmp_path / "cell_0042.csv", START)
    raw = read_arbin_csv(path)
    data = read_cycler_file(path)
    assert data.format == "arbin_csv"
    t, amps, volts = raw["Test_Time(s)"], raw["Current(A)"], raw["Voltage(V)"]
    charge, discharge = first_cycle(np.sign(amps).astype(int))
    check_first_cycle(
        formation_features(data),
        trapezoid_ah(t, amps, charge),
        trapezoid_ah(t, amps, discharge),
        trapezoid_wh(t, volts, amps, discharge),
    )
    # Arbin's own running totals agree within one 10 s interval of 0.5 A at each end.
    a, b = discharge
    vendor = raw["Discharge_Capacity(Ah)"][b] - raw["Discharge_Capacity(Ah)"][a - 1]
    features = formation_features(data)
    assert features["first_discharge_capacity_ah"] == pytest.approx(vendor, abs=2 * 0.5 * 10 / 3600)
    assert data.started_at == START.replace(microsecond=250000)
    assert np.array_equal(data.cycle, raw["Cycle_Index"].astype(int))


def test_arbin_xlsx_over_two_channel_sheets(tmp_path):
    curve = synthetic.build(FORMATION, shared_boundaries=False)
    half = curve.time_s.size // 2
    path = vendor_files.write_arbin_xlsx(
        curve, tmp_path / "cell_0042.xlsx", START, rows_per_sheet=half + 1
    )
    import openpyxl

    book = openpyxl.load_workbook(path, read_only=True)
    sheets = [ws for ws in book.worksheets if ws.title.startswith("Channel")]
    assert len(sheets) == 2
    rows = [row for ws in sheets for row in list(ws.iter_rows(values_only=True))[1:]]
    book.close()
    t = np.array([r[1] for r in rows], dtype=float)
    amps = np.array([r[6] for r in rows], dtype=float)
    volts = np.array([r[7] for r in rows], dtype=float)
    # The upload's short name "arbin" names the vendor; the bytes say it is the XLSX export.
    data = read_cycler_file(path, format="arbin_csv")
    assert data.format == "arbin_xlsx" and data.parser.startswith("openpyxl")
    assert data.rows == len(rows) == curve.time_s.size
    charge, discharge = first_cycle(np.sign(amps).astype(int))
    check_first_cycle(
        formation_features(data),
        trapezoid_ah(t, amps, charge),
        trapezoid_ah(t, amps, discharge),
        trapezoid_wh(t, volts, amps, discharge),
    )
    assert data.started_at == START
    assert read_cycler_file(path).format == "arbin_xlsx"  # detected without a name too


# --- Maccor --------------------------------------------------------------------------------------


def test_maccor_export_first_cycle_from_its_raw_columns(tmp_path):
    curve = synthetic.build(FORMATION)  # Maccor logs a step's first row at the last one's time
    path = vendor_files.write_maccor(curve, tmp_path / "FORM-0042.001", START)
    text = path.read_bytes().decode("latin-1").splitlines()
    rows = [line.split("\t") for line in text[2:]]
    t = np.array([float(r[3]) for r in rows]) * 60
    state = np.array([r[9] for r in rows])
    amps = np.array([float(r[7]) for r in rows]) * np.where(
        state == "C", 1, np.where(state == "D", -1, 0)
    )
    volts = np.array([float(r[8]) for r in rows])
    data = read_cycler_file(path)
    assert data.format == "maccor_txt"
    charge, discharge = first_cycle(np.sign(amps).astype(int))
    q_charge = trapezoid_ah(t, amps, charge)
    check_first_cycle(
        formation_features(data),
        q_charge,
        trapezoid_ah(t, amps, discharge),
        trapezoid_wh(t, volts, amps, discharge),
    )
    # Maccor's Amp-hr restarts each step: the charge's CC and CV steps add up to it.
    step = np.array([int(r[2]) for r in rows])
    cc_end = np.flatnonzero(step == 4)[-1]
    cv_end = np.flatnonzero(step == 5)[-1]
    assert float(rows[cc_end][5]) + float(rows[cv_end][5]) == pytest.approx(q_charge, rel=1e-6)
    assert q_charge == pytest.approx(synthetic.Q_CHARGE_1, rel=1e-6)
    assert data.started_at == START.replace(microsecond=0)


# --- BioLogic .mpr: every column set -------------------------------------------------------------


def galvani_records(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    from galvani import BioLogic

    mpr = BioLogic.MPRfile(str(path))
    mode = mpr.get_flag("mode") if "mode" in mpr.flags_dict else None
    return np.array(mpr.data), mode


def raw_first_cycle(records: np.ndarray, mode: np.ndarray | None) -> tuple[float, float, float]:
    """(Qch, Qdis, Edis) of the first cycle from whichever EC-Lab columns the file has."""
    names = records.dtype.names
    t = records["time/s"].astype(float)
    volts = records["Ewe/V"].astype(float)
    v_mid = np.r_[volts[0], (volts[1:] + volts[:-1]) / 2]  # over the interval before each row
    if "I/mA" in names:
        amps = records["I/mA"].astype(float) / 1000
        charge, discharge = first_cycle(np.sign(amps).astype(int))
        return (
            trapezoid_ah(t, amps, charge),
            trapezoid_ah(t, amps, discharge),
            trapezoid_wh(t, volts, amps, discharge),
        )
    if "dq/mA.h" in names or "(Q-Qo)/mA.h" in names:
        if "dq/mA.h" in names:
            dq = records["dq/mA.h"].astype(float) / 1000
        else:
            dq = np.diff(records["(Q-Qo)/mA.h"].astype(float), prepend=0.0) / 1000
        charge, discharge = first_cycle(np.sign(np.round(dq, 12)).astype(int))

        def total(rows: tuple[int, int], values: np.ndarray) -> float:
            return abs(float(values[rows[0] : rows[1] + 1].sum()))

        return total(charge, dq), total(discharge, dq), total(discharge, dq * v_mid)
    if "Q charge/discharge/mA.h" in names:
        q = records["Q charge/discharge/mA.h"].astype(float) / 1000
        half = records["half cycle"].astype(int)
        ends = [np.flatnonzero(half == h)[-1] for h in np.unique(half)]
        signs = [np.sign(q[e]) for e in ends]
        k = signs.index(1)
        dq = np.where(np.diff(half, prepend=-1) != 0, q, np.diff(q, prepend=0.0))
        rows = np.flatnonzero(half == half[ends[k + 1]])
        return (
            abs(q[ends[k]]),
            abs(q[ends[k + 1]]),
            abs(float((dq[rows] * v_mid[rows]).sum())),
        )
    # The galvanostatic setpoint where the mode says galvanostatic.
    amps = np.where(mode == 1, records["control/V/mA"].astype(float), 0.0) / 1000
    charge, discharge = first_cycle(np.sign(amps).astype(int))
    return (
        trapezoid_ah(t, amps, charge),
        trapezoid_ah(t, amps, discharge),
        trapezoid_wh(t, volts, amps, discharge),
    )


@pytest.mark.parametrize("variant", sorted(vendor_files.MPR_VARIANTS))
def test_biologic_mpr_with_each_column_set(tmp_path, variant):
    segments = FORMATION if variant == "mb_cccv_with_i" else GCPL
    curve = synthetic.build(segments)
    columns = vendor_files.mpr_columns(curve, segments)
    path = vendor_files.write_mpr(
        columns, vendor_files.MPR_VARIANTS[variant], tmp_path / "cell_C01.mpr", START
    )
    records, mode = galvani_records(path)
    data = read_cycler_file(path)
    assert data.format == "biologic_mpr" and data.rows == records.size
    q_charge, q_dis, e_dis = raw_first_cycle(records, mode)
    features = formation_features(data)
    check_first_cycle(features, q_charge, q_dis, e_dis)
    # And the protocol's own numbers, by construction.
    if segments is GCPL:
        assert q_charge == pytest.approx(GCPL_Q[0], rel=1e-6)
        assert q_dis == pytest.approx(GCPL_Q[1], rel=1e-6)
        assert features["cycles"] == 2.0
        assert features["capacity_retention_last"] == pytest.approx(GCPL_Q[3] / GCPL_Q[1], rel=1e-6)
    else:
        assert q_charge == pytest.approx(synthetic.Q_CHARGE_1, rel=1e-6)
    # EC-Lab's time/s counts from the acquisition start, which the LOG module keeps.
    assert data.started_at == START + timedelta(seconds=float(records["time/s"][0]))


def test_biologic_half_cycle_charge_written_as_a_size_takes_the_ox_red_sign(tmp_path):
    curve = synthetic.build(GCPL)
    columns = vendor_files.mpr_columns(curve, GCPL)
    columns["Q charge/discharge/mA.h"] = np.abs(columns["Q charge/discharge/mA.h"])
    ids = vendor_files.MPR_VARIANTS["gcpl_half_cycle"]
    path = vendor_files.write_mpr(columns, ids, tmp_path / "unsigned.mpr", START)
    records, _ = galvani_records(path)
    assert records["Q charge/discharge/mA.h"].min() >= 0
    features = formation_features(read_cycler_file(path))
    assert features["first_charge_capacity_ah"] == pytest.approx(GCPL_Q[0], rel=1e-6)
    assert features["first_discharge_capacity_ah"] == pytest.approx(GCPL_Q[1], rel=1e-6)


def test_biologic_setpoint_on_potentiostatic_rows_is_refused(tmp_path):
    # A CCCV written with the setpoint alone: on CV rows the setpoint is a voltage.
    curve = synthetic.build(FORMATION)
    columns = vendor_files.mpr_columns(curve, FORMATION)
    path = vendor_files.write_mpr(
        columns, vendor_files.MPR_VARIANTS["gcpl_setpoint"], tmp_path / "cv.mpr", START
    )
    with pytest.raises(CyclerFileRejected) as caught:
        read_cycler_file(path)
    assert caught.value.check == "missing_columns"
    assert "potentiostatic" in caught.value.detail and "control/V/mA" in caught.value.detail


def test_biologic_without_any_current_or_charge_column_is_refused(tmp_path):
    curve = synthetic.build(GCPL)
    columns = vendor_files.mpr_columns(curve, GCPL)
    ids = [*vendor_files.FLAGS, vendor_files.TIME, vendor_files.EWE]
    path = vendor_files.write_mpr(columns, ids, tmp_path / "bare.mpr", START)
    with pytest.raises(CyclerFileRejected) as caught:
        read_cycler_file(path)
    error = caught.value
    assert error.check == "missing_columns" and "bare.mpr" in error.detail
    for wanted in ("I/mA", "dq/mA.h", "(Q-Qo)/mA.h", "Q charge/discharge/mA.h", "control/V/mA"):
        assert wanted in error.detail  # names every column it looked for
    assert "Ewe/V" in error.detail and "time/s" in error.detail  # and those it found


def test_biologic_ocv_reads_as_rest(tmp_path):
    segments = [("rest", 3600, 0.0, 0.0, 3.30, 3.28)]
    curve = synthetic.build(segments)
    columns = vendor_files.mpr_columns(curve, segments)
    with_mode = vendor_files.write_mpr(
        columns,
        [*vendor_files.FLAGS, vendor_files.TIME, vendor_files.EWE],
        tmp_path / "ocv.mpr",
        START,
        technique="Open Circuit Voltage",
    )
    bare = vendor_files.write_mpr(
        columns,
        [vendor_files.TIME, vendor_files.EWE],
        tmp_path / "ocv_bare.mpr",
        START,
        technique="Open Circuit Voltage",
    )
    for path in (with_mode, bare):
        records, _ = galvani_records(path)
        data = read_cycler_file(path)
        assert np.all(data.current_a == 0)
        np.testing.assert_array_equal(data.voltage_v, records["Ewe/V"].astype(float))
        features = formation_features(data)
        assert "first_charge_capacity_ah" not in features
        assert features["min_voltage_v"] == pytest.approx(float(records["Ewe/V"].min()))


def test_biologic_peis_reads_its_mean_current_and_voltage(tmp_path):
    n = 41
    freq = np.logspace(5, -1, n)
    columns = {
        "mode": np.full(n, 2),
        "ox/red": np.zeros(n, dtype=int),
        "Ns": np.zeros(n, dtype=int),
        "time/s": np.linspace(0.0, 600.0, n),
        "freq/Hz": freq,
        "|Ewe|/V": np.full(n, 0.01),
        "|I|/A": np.full(n, 1e-4),
        "Phase(Z)/deg": -np.linspace(5, 60, n),
        "|Z|/Ohm": 10 + 100 / np.sqrt(freq),
        "Re(Z)/Ohm": 10 + 50 / np.sqrt(freq),
        "-Im(Z)/Ohm": 50 / np.sqrt(freq),
        "<Ewe>/V": np.full(n, 3.71),
        "<I>/mA": np.full(n, 1e-6),
        "cycle number": np.zeros(n),
    }
    f = vendor_files
    ids = [*f.FLAGS, f.NS, f.TIME, f.FREQ, f.EWE_MOD, f.I_MOD, f.PHASE, f.Z_MOD, f.RE_Z,
           f.MINUS_IM_Z, f.MEAN_EWE, f.MEAN_I, f.CYCLE]  # fmt: skip
    path = f.write_mpr(columns, ids, tmp_path / "peis.mpr", START,
                       technique="Potentio Electrochemical Impedance Spectroscopy")  # fmt: skip
    records, _ = galvani_records(path)
    data = read_cycler_file(path)
    np.testing.assert_allclose(data.voltage_v, records["<Ewe>/V"].astype(float))
    np.testing.assert_allclose(data.current_a, records["<I>/mA"].astype(float) / 1000)
    assert "first_charge_capacity_ah" not in formation_features(data)


# --- BioLogic .mpt text export -------------------------------------------------------------------

MPT_NAMES = {
    "with_i": ["mode", "ox/red", "error", "Ns", "time/s", "control/V/mA", "Ewe/V", "I/mA",
               "dq/mA.h", "(Q-Qo)/mA.h", "cycle number"],
    "gcpl_dq": ["mode", "ox/red", "error", "Ns", "time/s", "control/V/mA", "Ewe/V", "dq/mA.h",
                "(Q-Qo)/mA.h", "Q charge/discharge/mA.h", "half cycle", "cycle number"],
}  # fmt: skip


def read_mpt_raw(path: Path) -> dict[str, np.ndarray]:
    lines = path.read_bytes().decode("latin-1").splitlines()
    skip = int(lines[1].split(":")[1]) - 1
    names = lines[skip].rstrip("\t").split("\t")
    body = [line.rstrip("\t").split("\t") for line in lines[skip + 1 :]]
    return {
        name: np.array([float(r[k].replace(",", ".")) for r in body])
        for k, name in enumerate(names)
    }


@pytest.mark.parametrize(
    ("names", "decimal_comma"), [("with_i", False), ("gcpl_dq", True), ("gcpl_dq", False)]
)
def test_biologic_mpt_export(tmp_path, names, decimal_comma):
    segments = FORMATION if names == "with_i" else GCPL
    curve = synthetic.build(segments)
    columns = vendor_files.mpr_columns(curve, segments)
    path = vendor_files.write_mpt(
        columns, MPT_NAMES[names], tmp_path / "cell_C01.mpt", START, decimal_comma=decimal_comma
    )
    raw = read_mpt_raw(path)
    data = read_cycler_file(path)
    assert data.format == "biologic_mpt" and data.rows == raw["time/s"].size
    t, volts = raw["time/s"], raw["Ewe/V"]
    if "I/mA" in raw:
        amps = raw["I/mA"] / 1000
        charge, discharge = first_cycle(np.sign(amps).astype(int))
        expected = (
            trapezoid_ah(t, amps, charge),
            trapezoid_ah(t, amps, discharge),
            trapezoid_wh(t, volts, amps, discharge),
        )
    else:
        dq = raw["dq/mA.h"] / 1000
        v_mid = np.r_[volts[0], (volts[1:] + volts[:-1]) / 2]
        charge, discharge = first_cycle(np.sign(np.round(dq, 12)).astype(int))
        expected = (
            dq[charge[0] : charge[1] + 1].sum(),
            -dq[discharge[0] : discharge[1] + 1].sum(),
            -(dq * v_mid)[discharge[0] : discharge[1] + 1].sum(),
        )
    check_first_cycle(formation_features(data), *expected)
    assert data.started_at == START.replace(microsecond=250000)
    # The name the upload gives ("mpt") resolves to this reader.
    from formation.cycler import format_named

    assert read_cycler_file(path, format=format_named("mpt")).rows == data.rows


# --- five cycles, and cycles cut short ------------------------------------------------------------

FIVE_CYCLES: list[synthetic.Segment] = [("rest", 600, 0.0, 0.0, 3.00, 3.00)]
FIVE_DISCHARGE_S = (7560, 7488, 7416, 7344, 7272)  # 1.05 Ah, then 1 % less each cycle
for _seconds in FIVE_DISCHARGE_S:
    FIVE_CYCLES += [
        ("cc charge", 7200, 0.5, 0.5, 3.00, 4.20),
        ("cv taper", 1800, 0.5, 0.05, 4.20, 4.20),
        ("rest", 600, 0.0, 0.0, 4.20, 4.10),
        ("cc discharge", _seconds, -0.5, -0.5, 4.10, 3.00),
        ("rest", 600, 0.0, 0.0, 3.00, 3.00),
    ]


def test_five_cycles_each_with_its_features_and_retention(tmp_path):
    curve = synthetic.build(FIVE_CYCLES, shared_boundaries=False)
    path = vendor_files.write_arbin_csv(curve, tmp_path / "five.csv", START)
    raw = read_arbin_csv(path)
    t, amps, volts = raw["Test_Time(s)"], raw["Current(A)"], raw["Voltage(V)"]
    found = runs(np.sign(amps).astype(int))
    charges = [(a, b) for s, a, b in found if s > 0]
    discharges = [(a, b) for s, a, b in found if s < 0]
    assert len(charges) == len(discharges) == 5
    q_c = [trapezoid_ah(t, amps, rows) for rows in charges]
    q_d = [trapezoid_ah(t, amps, rows) for rows in discharges]
    e_c = [trapezoid_wh(t, volts, amps, rows) for rows in charges]
    e_d = [trapezoid_wh(t, volts, amps, rows) for rows in discharges]

    analysis = analyse(read_cycler_file(path))
    features = formation_features(analysis)
    assert features["cycles"] == 5.0
    assert features["capacity_retention_last"] == pytest.approx(q_d[4] / q_d[0], rel=1e-9)
    assert features["last_discharge_capacity_ah"] == pytest.approx(q_d[4], rel=1e-9)
    assert features["later_coulombic_efficiency"] == pytest.approx(
        np.mean([d / c for c, d in zip(q_c[1:], q_d[1:], strict=True)]), rel=1e-9
    )
    cycles = analysis.cycles
    assert [c.number for c in cycles] == [1, 2, 3, 4, 5]
    for k, cycle in enumerate(cycles):
        assert cycle.charge_capacity_ah == pytest.approx(q_c[k], rel=1e-9)
        assert cycle.discharge_capacity_ah == pytest.approx(q_d[k], rel=1e-9)
        assert cycle.charge_energy_wh == pytest.approx(e_c[k], rel=1e-9)
        assert cycle.discharge_energy_wh == pytest.approx(e_d[k], rel=1e-9)
        assert cycle.coulombic_efficiency == pytest.approx(q_d[k] / q_c[k], rel=1e-9)
        assert cycle.energy_efficiency == pytest.approx(e_d[k] / e_c[k], rel=1e-9)
        assert cycle.average_charge_voltage_v == pytest.approx(e_c[k] / q_c[k], rel=1e-9)
        assert cycle.average_discharge_voltage_v == pytest.approx(e_d[k] / q_d[k], rel=1e-9)
        assert cycle.capacity_retention == pytest.approx(q_d[k] / q_d[0], rel=1e-9)
    # The fade by construction: 1 % of the first discharge less each cycle, within one interval.
    for k, seconds in enumerate(FIVE_DISCHARGE_S):
        assert q_d[k] == pytest.approx(0.5 * seconds / 3600, abs=0.5 * 10 / 3600 + 1e-12)
    curves = {c.name: c for c in formation_curves(analysis)}
    per_cycle = curves["discharge_capacity_per_cycle"]
    assert per_cycle.x_name == "cycle" and list(per_cycle.x) == [1, 2, 3, 4, 5]
    np.testing.assert_allclose(per_cycle.y, q_d, rtol=1e-9)
    np.testing.assert_allclose(curves["capacity_retention_per_cycle"].y,
                               np.array(q_d) / q_d[0], rtol=1e-9)  # fmt: skip
    loops = [name for name in curves if name.startswith("voltage_vs_capacity")]
    assert sorted(loops) == ["voltage_vs_capacity"] + [
        f"voltage_vs_capacity_cycle_{n}" for n in (2, 3, 4, 5)
    ]
    # Cycle 3's loop: the net charge from its charge's first row to its discharge's last,
    # through the rest between (the CV tail's last interval into the rest included).
    loop = curves["voltage_vs_capacity_cycle_3"]
    (a, _), (_, d) = charges[2], discharges[2]
    net = np.r_[0.0, np.cumsum(np.diff(t[a : d + 1]) * (amps[a + 1 : d + 1] + amps[a:d]) / 2)]
    assert loop.x.max() == pytest.approx(net.max() / 3600, rel=1e-9)
    assert loop.x[-1] == pytest.approx(net[-1] / 3600, abs=1e-9)  # what the cycle lost
    # It differs from Qch - Qdis by the two rest-boundary intervals the half cycles leave out:
    # half of 10 s at 0.05 A (CV end) and at 0.5 A (discharge start).
    boundary = (0.05 + 0.5) / 2 * 10 / 3600
    assert net[-1] / 3600 == pytest.approx(q_c[2] - q_d[2], abs=boundary + 1e-9)


def test_an_incomplete_first_discharge_is_flagged_not_reported(tmp_path):
    # The file ends 40 minutes into the first discharge (the cell was taken off the channel).
    cut = FORMATION[:6] + [("cc discharge", 2400, -0.5, -0.5, 4.10, 3.75)]
    curve = synthetic.build(cut)
    path = synthetic.write_csv(curve, tmp_path / "cut.csv")
    features = formation_features(read_cycler_file(path))
    assert features["first_discharge_complete"] == 0.0
    assert features["first_charge_complete"] == 1.0
    assert features["first_charge_capacity_ah"] == pytest.approx(synthetic.Q_CHARGE_1, rel=1e-9)
    for never in ("first_discharge_capacity_ah", "initial_coulombic_efficiency",
                  "discharge_energy_wh", "average_discharge_voltage_v", "cycles_complete"):  # fmt: skip
        assert never not in features
    assert features["cycles"] == 0.0 and features["incomplete_half_cycles"] == 1.0


def test_a_discharge_stopped_before_the_cut_off_is_flagged(tmp_path):
    # Cycle 1's discharge stops at 3.60 V (an alarm), then the protocol goes on to cycle 2,
    # whose discharge reaches the 3.00 V cut-off.
    early = list(FORMATION)
    early[6] = ("cc discharge", 3436, -0.5, -0.5, 4.10, 3.60)
    early[7] = ("rest", 600, 0.0, 0.0, 3.60, 3.20)
    curve = synthetic.build(early)
    features = formation_features(read_cycler_file(synthetic.write_csv(curve, tmp_path / "e.csv")))
    assert features["first_discharge_complete"] == 0.0
    assert "first_discharge_capacity_ah" not in features
    assert "capacity_retention_last" not in features  # no first discharge to compare with
    # A cut-off given by the recipe decides instead of the file's other discharges.
    given = formation_features(read_cycler_file(tmp_path / "e.csv"), discharge_cutoff_v=3.6)
    assert given["first_discharge_complete"] == 1.0
    assert given["first_discharge_capacity_ah"] == pytest.approx(0.5 * 3436 / 3600, rel=1e-9)


def test_a_file_that_starts_inside_a_charge_has_no_first_charge_capacity(tmp_path):
    curve = synthetic.build(FORMATION[3:])  # the log starts with the CC charge already running
    features = formation_features(read_cycler_file(synthetic.write_csv(curve, tmp_path / "s.csv")))
    assert features["first_charge_complete"] == 0.0
    assert "first_charge_capacity_ah" not in features
    assert features["first_discharge_capacity_ah"] == pytest.approx(synthetic.Q_DISCHARGE_1)


# --- protocol steps and dQ/dV --------------------------------------------------------------------


def test_protocol_steps_are_recognised_from_current_and_voltage(tmp_path):
    curve = synthetic.build(FORMATION)
    # Without the file's step column: from current and voltage alone.
    path = tmp_path / "nostep.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Time(s)", "Voltage(V)", "Current(A)"])
        writer.writerows(zip(curve.time_s, curve.voltage_v, curve.current_a, strict=True))
    steps = analyse(read_cycler_file(path)).steps
    expected = {"rest": "rest", "partial discharge": "cc_discharge", "cc charge": "cc_charge",
                "cv taper": "cv_charge", "cc discharge": "cc_discharge"}  # fmt: skip
    assert [s.kind for s in steps] == [expected[segment[0]] for segment in FORMATION]
    cv = steps[4]
    assert cv.voltage_start_v == pytest.approx(4.2) and cv.voltage_end_v == pytest.approx(4.2)
    # Its duration is the taper's, less the first 40 s the 2 % CC tolerance admits as CC.
    assert 1800 - 50 <= cv.duration_s <= 1800


def plateau_charge(tmp_path: Path) -> Path:
    """A 0.5 A charge from 3.1 to 4.2 V whose dQ/dV is a flat 0.5 Ah/V plus a Gaussian peak of
    4 Ah/V at 3.70 V (sigma 30 mV), the shape of a two-phase plateau; then a linear discharge.
    The voltage at each 10 s row is the inverse of Q(V), the integral of that dQ/dV."""
    volts = np.linspace(3.1, 4.2, 20001)
    density = 0.5 + 4.0 * np.exp(-0.5 * ((volts - 3.70) / 0.03) ** 2)
    q_of_v = np.r_[0.0, np.cumsum(np.diff(volts) * (density[1:] + density[:-1]) / 2)]
    q_total = q_of_v[-1]
    charge_s = q_total / 0.5 * 3600
    t_charge = np.arange(0.0, charge_s, 10.0)
    v_charge = np.interp(0.5 * t_charge / 3600, q_of_v, volts)
    t_rest = charge_s + np.arange(0.0, 300.0, 10.0)
    t_dis = t_rest[-1] + 10 + np.arange(0.0, 7200.0 + 1, 10.0)
    time_s = np.r_[np.arange(-300.0, 0.0, 10.0), t_charge, t_rest, t_dis, t_dis[-1] + 10]
    volts_out = np.r_[np.full(30, 3.1), v_charge, np.full(t_rest.size, 4.15),
                      4.15 - 1.05 * (t_dis - t_dis[0]) / 7200, 3.2]  # fmt: skip
    amps = np.r_[np.zeros(30), np.full(t_charge.size, 0.5), np.zeros(t_rest.size),
                 np.full(t_dis.size, -0.5), 0.0]  # fmt: skip
    path = tmp_path / "plateau.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Time(s)", "Voltage(V)", "Current(A)"])
        writer.writerows(zip(time_s + 300, volts_out, amps, strict=True))
    return path


def test_dqdv_of_the_first_charge_finds_the_plateau(tmp_path):
    analysis = analyse(read_cycler_file(plateau_charge(tmp_path)))
    features = formation_features(analysis)
    assert features["dqdv_charge_peak_1_v"] == pytest.approx(3.70, abs=0.005)
    # Smoothing over 55 mV lowers a 30 mV-wide peak a little: within 5 % of 4.5 Ah/V.
    assert features["dqdv_charge_peak_1_ah_per_v"] == pytest.approx(4.5, rel=0.05)
    assert "dqdv_charge_peak_2_v" not in features  # the flat stretches have no peak
    curve = {c.name: c for c in formation_curves(analysis)}["dqdv_first_charge"]
    assert curve.x_name == "voltage_v" and curve.unit == "Ah/V"
    flat = (curve.x > 3.2) & (curve.x < 3.45)
    np.testing.assert_allclose(curve.y[flat], 0.5, rtol=0.02)
    # The linear discharge: a flat dQ/dV (1.0 Ah over 1.05 V) and no peak.
    discharge = {c.name: c for c in formation_curves(analysis)}["dqdv_first_discharge"]
    middle = (discharge.x > 3.3) & (discharge.x < 4.0)
    np.testing.assert_allclose(discharge.y[middle], 1.0 / 1.05, rtol=0.02)
    assert not any(key.startswith("dqdv_discharge_peak") for key in features)
