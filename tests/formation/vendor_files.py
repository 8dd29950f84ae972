"""Realistic vendor files written from a synthetic protocol (tests/formation/synthetic.py), so
their answers are known by construction. Each writer writes what that vendor writes: its header,
column names, units, sign convention, line ends and its own running capacity columns.

BioLogic .mpr files are written byte for byte in EC-Lab's modular layout (file magic, then
"MODULE" blocks: settings, data, log) with the column ids and record layout galvani documents
(galvani.BioLogic.VMPdata_colID_dtype_map), for the column sets no public sample covers.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from pathlib import Path

import numpy as np

from .synthetic import Curve, Segment

# --- what every vendor's running columns are computed from --------------------------------------


def interval_charge_ah(curve: Curve) -> np.ndarray:
    """Per row: the exact charge (Ah) of the interval ending at it. Current is linear between rows
    of a segment, so the trapezoid is the exact integral the cycler's fast internal clock sees."""
    q = np.zeros(curve.time_s.size)
    q[1:] = np.diff(curve.time_s) * (curve.current_a[1:] + curve.current_a[:-1]) / 2 / 3600
    return q


def interval_energy_wh(curve: Curve) -> np.ndarray:
    e = np.zeros(curve.time_s.size)
    power = curve.current_a * curve.voltage_v
    e[1:] = np.diff(curve.time_s) * (power[1:] + power[:-1]) / 2 / 3600
    return e


def kinds(curve: Curve, segments: Sequence[Segment]) -> np.ndarray:
    return np.array([segments[s - 1][0] for s in curve.step])


def direction(curve: Curve) -> np.ndarray:
    """+1 charge, -1 discharge, 0 rest per row."""
    return np.sign(np.round(curve.current_a, 12)).astype(int)


def half_cycle_numbers(curve: Curve) -> np.ndarray:
    """EC-Lab's 'half cycle': 0, 1, 2... counting each change of direction (rest keeps it)."""
    sign = direction(curve)
    last, number, out = 0, 0, np.zeros(sign.size, dtype=np.int64)
    for k, s in enumerate(sign):
        if s != 0 and last != 0 and s != last:
            number += 1
        if s != 0:
            last = s
        out[k] = number
    return out


def cycle_numbers(curve: Curve) -> np.ndarray:
    """0-based cycle count that goes up at each charge that follows a discharge."""
    sign = direction(curve)
    seen_discharge, number, out = False, 0, np.zeros(sign.size, dtype=np.int64)
    for k, s in enumerate(sign):
        if s < 0:
            seen_discharge = True
        elif s > 0 and seen_discharge:
            number += 1
            seen_discharge = False
        out[k] = number
    return out


# --- Arbin ---------------------------------------------------------------------------------------

ARBIN_HEADER = [
    "Data_Point", "Test_Time(s)", "Date_Time", "Step_Time(s)", "Step_Index", "Cycle_Index",
    "Current(A)", "Voltage(V)", "Charge_Capacity(Ah)", "Discharge_Capacity(Ah)",
    "Charge_Energy(Wh)", "Discharge_Energy(Wh)", "dV/dt(V/s)", "Internal_Resistance(Ohm)",
    "Aux_Temperature_1(C)",
]  # fmt: skip


def arbin_rows(curve: Curve, start: datetime) -> list[list[object]]:
    """Arbin MITS Pro's columns: running charge and discharge totals per cycle, signed current."""
    q, e = interval_charge_ah(curve), interval_energy_wh(curve)
    cycle = cycle_numbers(curve) + 1
    rows, qc, qd, ec, ed = [], 0.0, 0.0, 0.0, 0.0
    step_start = curve.time_s[0]
    for k in range(curve.time_s.size):
        if k and cycle[k] != cycle[k - 1]:
            qc = qd = ec = ed = 0.0
        if k and curve.step[k] != curve.step[k - 1]:
            step_start = curve.time_s[k]
        if q[k] > 0:
            qc, ec = qc + q[k], ec + e[k]
        elif q[k] < 0:
            qd, ed = qd - q[k], ed - e[k]
        stamp = start + timedelta(seconds=float(curve.time_s[k]))
        rows.append([
            k + 1, f"{curve.time_s[k]:.4f}", stamp.strftime("%m/%d/%Y %H:%M:%S.%f")[:-3],
            f"{curve.time_s[k] - step_start:.4f}", int(curve.step[k]), int(cycle[k]),
            repr(float(curve.current_a[k])), repr(float(curve.voltage_v[k])),
            f"{qc:.9f}", f"{qd:.9f}", f"{ec:.9f}", f"{ed:.9f}", "0", "0.0171",
            f"{curve.temperature_c[k]:.3f}",
        ])  # fmt: skip
    return rows


def write_arbin_csv(curve: Curve, path: Path, start: datetime) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(ARBIN_HEADER)
        writer.writerows(arbin_rows(curve, start))
    return path


def write_arbin_xlsx(
    curve: Curve, path: Path, start: datetime, *, rows_per_sheet: int = 1_048_575
) -> Path:
    """Arbin's Excel export: an Info sheet, the data over as many Channel sheets as it needs."""
    import openpyxl

    book = openpyxl.Workbook(write_only=True)
    info = book.create_sheet("Info")
    info.append(["TEST REPORT"])
    info.append(["Test Name", "formation_cell_0042", "Start DateTime", start.isoformat(" ")])
    rows = arbin_rows(curve, start)
    for n, first in enumerate(range(0, len(rows), rows_per_sheet)):
        sheet = book.create_sheet("Channel_1-006" + (f"_{n}" if n else ""))
        sheet.append(ARBIN_HEADER)
        for row in rows[first : first + rows_per_sheet]:
            # Excel holds numbers as numbers; the date-time as text, as Arbin writes it.
            sheet.append([row[0], float(row[1]), row[2], *[float(x) for x in row[3:]]])
    stats = book.create_sheet("StatisticByCycle-Chan_1")
    stats.append(["Cycle_Index", "Charge_Capacity(Ah)"])
    book.save(path)
    return path


# --- Maccor --------------------------------------------------------------------------------------


def write_maccor(curve: Curve, path: Path, start: datetime) -> Path:
    """Maccor's tab-separated text export: minutes, unsigned Amps with State C/D/R, CRLF, and
    Amp-hr/Watt-hr counted per step, in ISO-8859-1."""
    q, e = interval_charge_ah(curve), interval_energy_wh(curve)
    sign = direction(curve)
    cycle = cycle_numbers(curve)
    lines = [
        f"Today's Date {start:%m/%d/%Y}  Date of Test:\t{start:%m/%d/%Y}\t Filename:\t"
        "C:\\Data\\FORM-0042.001 Procedure:\tFORM-C10.000 Formation at 0.1C, 3.0 to 4.2 V, 25°C",
        "Rec#\tCyc#\tStep\tTest (Min)\tStep (Min)\tAmp-hr\tWatt-hr\tAmps\tVolts\tState\tES\t"
        "DPt Time",
    ]
    ah = wh = 0.0
    step_start = curve.time_s[0]
    for k in range(curve.time_s.size):
        if k and curve.step[k] != curve.step[k - 1]:
            ah = wh = 0.0
            step_start = curve.time_s[k]
        ah, wh = ah + abs(q[k]), wh + abs(e[k])
        state = {1: "C", -1: "D", 0: "R"}[int(sign[k])]
        stamp = start + timedelta(seconds=float(curve.time_s[k]))
        lines.append(
            f"{k + 1}\t{cycle[k]}\t{curve.step[k]}\t{curve.time_s[k] / 60:.10f}\t"
            f"{(curve.time_s[k] - step_start) / 60:.10f}\t{ah:.10f}\t{wh:.10f}\t"
            f"{abs(curve.current_a[k]):.10f}\t{curve.voltage_v[k]:.8f}\t{state}\t0\t"
            f"{stamp:%m/%d/%Y %H:%M:%S}"
        )
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("latin-1"))
    return path


# --- BioLogic ------------------------------------------------------------------------------------

# EC-Lab column ids (galvani.BioLogic.VMPdata_colID_dtype_map; 1-65 are the packed flags).
FLAGS = [1, 2, 3, 21, 31, 65]  # mode, ox/red, error, control changes, Ns changes, counter inc.
NS, TIME, CONTROL_V_MA, EWE, DQ, I_MA, Q_QO, CYCLE = 131, 4, 5, 6, 7, 8, 13, 24
Q_CHARGE_DISCHARGE, HALF_CYCLE = 467, 468
FREQ, EWE_MOD, I_MOD, PHASE, Z_MOD, RE_Z, MINUS_IM_Z, MEAN_I, MEAN_EWE = (
    32, 33, 34, 35, 36, 37, 38, 76, 77,
)  # fmt: skip
CONTROL_V = 19

# Column sets as EC-Lab writes them per technique (no public sample covers the GCPL ones).
MPR_VARIANTS: dict[str, list[int]] = {
    # MB (modulo bat) running a CCCV: measured current and its charge columns.
    "mb_cccv_with_i": [*FLAGS, NS, TIME, CONTROL_V_MA, EWE, I_MA, DQ, Q_QO, CYCLE],
    # GCPL: the setpoint and EC-Lab's per-point charge, no measured current.
    "gcpl_dq": [*FLAGS, NS, TIME, CONTROL_V_MA, EWE, DQ, Q_QO, CYCLE],
    # GCPL with the running charge only.
    "gcpl_q_qo": [*FLAGS, NS, TIME, CONTROL_V_MA, EWE, Q_QO, CYCLE],
    # GCPL of a newer EC-Lab: charge per half cycle, numbered.
    "gcpl_half_cycle": [*FLAGS, NS, TIME, CONTROL_V_MA, EWE, Q_CHARGE_DISCHARGE, HALF_CYCLE],
    # GCPL with the setpoint alone (charge columns deselected in the export settings).
    "gcpl_setpoint": [*FLAGS, NS, TIME, CONTROL_V_MA, EWE, CYCLE],
}


def mpr_columns(curve: Curve, segments: Sequence[Segment]) -> dict[str, np.ndarray]:
    """Every EC-Lab column this module can write, by galvani's names, for a synthetic curve."""
    kind = kinds(curve, segments)
    sign = direction(curve)
    mode = np.where(sign == 0, 3, np.where(np.char.startswith(kind, "cv"), 2, 1))
    oxred = np.maximum.accumulate(np.where(sign != 0, np.arange(sign.size), 0))
    dq_mah = interval_charge_ah(curve) * 1000
    half = half_cycle_numbers(curve)
    qcd = np.zeros(sign.size)
    for k in range(sign.size):
        qcd[k] = dq_mah[k] + (qcd[k - 1] if k and half[k] == half[k - 1] else 0.0)
    setpoint = np.where(mode == 2, curve.voltage_v, curve.current_a * 1000)
    return {
        "mode": mode,
        "ox/red": (sign[oxred] > 0).astype(int),
        "error": np.zeros(sign.size, dtype=int),
        "Ns": curve.step - 1,
        "time/s": curve.time_s,
        "control/V/mA": np.where(mode == 3, 0.0, setpoint),
        "control/V": curve.voltage_v,
        "Ewe/V": curve.voltage_v,
        "I/mA": curve.current_a * 1000,
        "dq/mA.h": dq_mah,
        "(Q-Qo)/mA.h": np.cumsum(dq_mah),
        "cycle number": cycle_numbers(curve).astype(float),
        "Q charge/discharge/mA.h": qcd,
        "half cycle": half,
    }


def _module(short: bytes, long: bytes, data: bytes, day: datetime) -> bytes:
    header = np.zeros(
        1, dtype=[("short", "S10"), ("long", "S25"), ("length", "<u4"), ("version", "<u4"),
                  ("date", "S8")],
    )  # fmt: skip
    header["short"], header["long"] = short.ljust(10), long.ljust(25)
    header["length"], header["version"] = len(data), 0 if short != b"VMP data" else 2
    header["date"] = day.strftime("%m/%d/%y").encode()
    return b"MODULE" + header.tobytes() + data


def write_mpr(
    columns: dict[str, np.ndarray],
    col_ids: Sequence[int],
    path: Path,
    start: datetime,
    *,
    technique: str = "Galvanostatic Cycling with Potential Limitation",
) -> Path:
    """An EC-Lab .mpr: settings (technique, date), data (version-2 column ids then records) and
    log (the acquisition start as an OLE date at byte 465) modules."""
    from galvani.BioLogic import MPR_MAGIC, VMPdata_colID_dtype_map, VMPdata_dtype_from_colIDs

    dtype, flags = VMPdata_dtype_from_colIDs(np.array(col_ids))
    n = columns["time/s"].size
    records = np.zeros(n, dtype=dtype)
    if flags:
        packed = np.zeros(n, dtype=np.uint8)
        for name, (mask, _) in flags.items():
            value = columns.get(name, np.zeros(n)).astype(np.uint8)
            shift = (int(mask) & -int(mask)).bit_length() - 1
            packed |= (value << shift).astype(np.uint8) & mask
        records["flags"] = packed
    for col in col_ids:
        if col in VMPdata_colID_dtype_map:
            name = VMPdata_colID_dtype_map[col][0]
            records[name] = columns[name]
    head = np.array([n], "<u4").tobytes() + bytes([len(col_ids)])
    head += np.array(col_ids, "<u2").tobytes()
    data = head.ljust(405, b"\x00") + records.tobytes()
    settings = b"\x2f" + technique.encode().ljust(0x2F, b" ") + b"\x00" * 200
    # An OLE date: days since 1899-12-30, the time of day as the fraction.
    midnight = datetime.combine(start.date(), time())
    ole_days = start.toordinal() - date(1899, 12, 30).toordinal()
    ole_days += (start - midnight).total_seconds() / 86400
    log = bytearray(600)
    log[465:473] = np.array([ole_days], "<f8").tobytes()
    content = (
        MPR_MAGIC
        + _module(b"VMP Set", b"VMP settings", settings, start)
        + _module(b"VMP data", b"VMP data", data, start)
        + _module(b"VMP LOG", b"VMP LOG", bytes(log), start)
    )
    path.write_bytes(content)
    return path


MPT_FORMATS = {"float": "{:.7f}", "int": "{:d}"}


def write_mpt(
    columns: dict[str, np.ndarray],
    names: Sequence[str],
    path: Path,
    start: datetime,
    *,
    decimal_comma: bool = False,
    technique: str = "Galvanostatic Cycling with Potential Limitation",
) -> Path:
    """EC-Lab's text export: its header block (length stated on line 2, acquisition start),
    then a tab-separated table with a trailing tab, CRLF, in the PC's decimal separator."""
    header = [
        "EC-Lab ASCII FILE",
        "Nb header lines : {n}",
        "",
        technique,
        "",
        "Run on channel : 1 (SN 0042)",
        "Electrode connection : standard",
        "Ewe ctrl range : min = 0,00 V, max = 5,00 V",
        f"Acquisition started on : {start:%m/%d/%Y %H:%M:%S}.{start.microsecond // 1000:03d}",
        "Saved on :",
        "File : formation_0042_C01.mpr",
        "Device : VMP-300",
        "",
    ]
    header[1] = header[1].format(n=len(header) + 1)
    integer = {"mode", "ox/red", "error", "Ns", "half cycle", "control changes"}
    lines = [*header, "\t".join(names) + "\t"]
    table = [columns[name] for name in names]
    for k in range(columns["time/s"].size):
        cells = []
        for name, values in zip(names, table, strict=True):
            text = f"{int(values[k])}" if name in integer else f"{float(values[k]):.7E}"
            cells.append(text.replace(".", ",") if decimal_comma else text)
        lines.append("\t".join(cells) + "\t")
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("latin-1"))
    return path
