"""BioLogic EC-Lab files: the binary .mpr (read by galvani) and the .mpt text export.

EC-Lab writes a different column set for each technique and version. GCPL (galvanostatic
cycling) often has no measured current column at all: the current is the galvanostatic setpoint
``control/V/mA`` and the charge is in ``dq/mA.h`` (per point), ``(Q-Qo)/mA.h`` (running) and
``Q charge/discharge/mA.h`` (per half cycle, numbered by ``half cycle``). MB (modulo bat, e.g. a
CCCV) and CA/CP techniques carry ``I/mA``; EIS carries ``<I>/mA``; OCV carries none, since no
current flows. The current is taken from whichever column says most directly what flowed:

1. ``I/mA`` or ``<I>/mA``: the measured current, as it is.
2. ``dq/mA.h`` (``dQ/mA.h``): EC-Lab's own integral of the measured current over each point's
   interval; the current is that charge over that interval (the mean current of the interval).
3. ``(Q-Qo)/mA.h``: the running charge; its increments are the same per-interval charge.
4. ``Q charge/discharge/mA.h``: the charge of the half cycle so far; an increment within a half
   cycle (``half cycle`` unchanged, or the size of the charge growing), else the value itself.
   Signed like the current; written as a size only, it takes its sign from ``ox/red``.
5. ``Q charge/mA.h`` with ``Q discharge/mA.h``: their increments, charge minus discharge.
6. ``control/V/mA`` or ``control/mA``: the setpoint, on rows that are galvanostatic (``mode`` 1;
   every row when the file has no ``mode``); rest rows (``mode`` 3) carry no current. A file
   whose potentiostatic rows (``mode`` 2) have no measured current or charge is refused: the
   setpoint there is a voltage.
7. No current or charge column, and every row a rest (``mode`` 3) or the technique an OCV: zero.

A file that fits none of these is refused, naming what it lacks and the columns it has.
Units: time/s in s, Ewe/V in V, mA and mA.h as named. Sign: EC-Lab's current, charge increment
and setpoint are positive for an oxidation at the working electrode, which is the charge of a
cell wired with its cathode on the working electrode: our convention as it is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from .errors import CyclerFileRejected
from .text import Column, Layout, parse_wall_clock, read_table, text_encoding

MAH_TO_AS = 3.6  # 1 mA.h = 3.6 A.s

VOLTAGE_COLUMNS = ("Ecell/V", "Ewe/V", "<Ewe>/V", "<Ewe/V>")
CURRENT_COLUMNS = ("I/mA", "<I>/mA")
INCREMENT_COLUMNS = ("dq/mA.h", "dQ/mA.h")
RUNNING_COLUMN = "(Q-Qo)/mA.h"
HALF_CYCLE_CHARGE = "Q charge/discharge/mA.h"
SETPOINT_COLUMNS = ("control/V/mA", "control/mA")
# Every column the current can be derived from, in the order of the module's list.
CURRENT_SOURCES = (
    *CURRENT_COLUMNS,
    *INCREMENT_COLUMNS,
    RUNNING_COLUMN,
    HALF_CYCLE_CHARGE,
    "Q charge/mA.h + Q discharge/mA.h",
    "control/V/mA (galvanostatic)",
    "control/mA",
    "mode (all rest) or an OCV technique",
)
# Every column read from an .mpt, when present.
MPT_COLUMNS = (
    "time/s", *VOLTAGE_COLUMNS, *CURRENT_COLUMNS, *INCREMENT_COLUMNS, RUNNING_COLUMN,
    HALF_CYCLE_CHARGE, "half cycle", "Q charge/mA.h", "Q discharge/mA.h", *SETPOINT_COLUMNS,
    "mode", "ox/red", "Ns", "cycle number", "Temperature/°C",
)  # fmt: skip

MODE_GALVANOSTATIC, MODE_POTENTIOSTATIC, MODE_REST = 1, 2, 3
OCV_TECHNIQUE = "Open Circuit Voltage"

MPT_MAGIC = (b"EC-Lab ASCII FILE", b"BT-Lab ASCII FILE")
_NB_HEADER = re.compile(r"Nb header lines\s*:\s*(\d+)")
_ACQUISITION = re.compile(r"Acquisition started on\s*:\s*(.+?)\s*$")


@dataclass(frozen=True)
class BiologicColumns:
    """What the reader needs, in SI, and which column the current came from."""

    time_s: np.ndarray
    voltage_v: np.ndarray
    current_a: np.ndarray
    step: np.ndarray | None
    cycle: np.ndarray | None
    temperature_c: np.ndarray | None
    current_from: str


def _rate(charge_mah: np.ndarray, time_s: np.ndarray) -> np.ndarray:
    """Per-row charge increments (mA.h over the interval before each row) -> that interval's mean
    current in A. A row with no interval before it (the first, or a repeated timestamp at a step
    change) takes the current of the row after it, so it does not read as a rest."""
    dt = np.diff(time_s, prepend=time_s[0])
    current = np.zeros(time_s.size)
    moving = dt > 0
    current[moving] = charge_mah[moving] * MAH_TO_AS / dt[moving]
    for k in np.flatnonzero(~moving)[::-1]:  # from the end, so a run of repeats all follow
        if k + 1 < time_s.size:
            current[k] = current[k + 1]
    return current


def _resetting_increments(values: np.ndarray, restarts: np.ndarray | None) -> np.ndarray:
    """Increments of a quantity that restarts from zero (per half cycle): within a run the
    difference, at a restart the value itself. Without a restart marker, a restart is where the
    size falls or the sign flips."""
    previous = np.r_[0.0, values[:-1]]
    if restarts is None:
        restarts = (np.abs(values) < np.abs(previous)) | (np.sign(values) * np.sign(previous) < 0)
    restarts = np.asarray(restarts, dtype=bool).copy()
    restarts[0] = True
    return np.where(restarts, values, values - previous)


def derive_current(
    columns: Mapping[str, np.ndarray],
    time_s: np.ndarray,
    *,
    file_name: str,
    ocv_technique: bool = False,
) -> tuple[np.ndarray, str]:
    """(current in A, the column it came from), or CyclerFileRejected naming what is missing."""
    names = set(columns)
    mode = columns.get("mode")
    for col in CURRENT_COLUMNS:
        if col in names:
            return np.asarray(columns[col], np.float64) / 1000.0, col
    for col in INCREMENT_COLUMNS:
        if col in names:
            return _rate(np.asarray(columns[col], np.float64), time_s), col
    if RUNNING_COLUMN in names:
        running = np.asarray(columns[RUNNING_COLUMN], np.float64)
        return _rate(np.diff(running, prepend=running[0]), time_s), RUNNING_COLUMN
    if HALF_CYCLE_CHARGE in names:
        half = columns.get("half cycle")
        restarts = None if half is None else np.diff(half, prepend=half[0]) != 0
        values = np.asarray(columns[HALF_CYCLE_CHARGE], float)
        oxred = columns.get("ox/red")
        if oxred is not None and not np.any(values < 0):
            # Written as a size: the direction is the ox/red flag (1 oxidation = charge).
            values = np.abs(values) * np.where(np.asarray(oxred) == 1, 1.0, -1.0)
            if half is None:
                restarts = np.diff(np.asarray(oxred), prepend=oxred[0]) != 0
        increments = _resetting_increments(values, restarts)
        source = HALF_CYCLE_CHARGE + (" by half cycle" if half is not None else "")
        return _rate(increments, time_s), source
    if {"Q charge/mA.h", "Q discharge/mA.h"} <= names:
        charged = _resetting_increments(np.asarray(columns["Q charge/mA.h"], float), None)
        discharged = _resetting_increments(np.asarray(columns["Q discharge/mA.h"], float), None)
        return _rate(charged - np.abs(discharged), time_s), "Q charge/mA.h - Q discharge/mA.h"
    setpoint = next((c for c in SETPOINT_COLUMNS if c in names), None)
    if setpoint is not None:
        values = np.asarray(columns[setpoint], np.float64) / 1000.0
        if mode is None:
            return values, setpoint
        if np.any(mode == MODE_POTENTIOSTATIC):
            k = int(np.flatnonzero(mode == MODE_POTENTIOSTATIC)[0])
            raise CyclerFileRejected(
                "missing_columns",
                f"{file_name}: record {k + 1} is potentiostatic (mode 2), where {setpoint} is a "
                "voltage, and the file has no measured current or charge column "
                f"({', '.join(CURRENT_COLUMNS + INCREMENT_COLUMNS)}, {RUNNING_COLUMN}, "
                f"{HALF_CYCLE_CHARGE}) to take the current from (columns: {', '.join(names)})",
            )
        return np.where(mode == MODE_GALVANOSTATIC, values, 0.0), f"{setpoint} (galvanostatic)"
    if (mode is not None and np.all(mode == MODE_REST)) or ocv_technique:
        return np.zeros(time_s.size), "none (open circuit)"
    raise CyclerFileRejected(
        "missing_columns",
        f"{file_name}: no current, and nothing to derive it from: the file has none of "
        f"{', '.join(CURRENT_SOURCES)} (columns: {', '.join(sorted(names))})",
    )


def biologic_columns(
    columns: Mapping[str, np.ndarray], *, file_name: str, ocv_technique: bool = False
) -> BiologicColumns:
    """The reader's columns from EC-Lab's, by EC-Lab's names (galvani's record names)."""
    names = set(columns)
    volt = next((c for c in VOLTAGE_COLUMNS if c in names), None)
    missing = [what for what, col in (("time/s", "time/s" in names), ("Ewe/V", volt)) if not col]
    if missing:
        raise CyclerFileRejected(
            "missing_columns",
            f"{file_name}: the BioLogic data has no {' or '.join(missing)} column "
            f"(columns: {', '.join(sorted(names))})",
        )
    time_s = np.asarray(columns["time/s"], np.float64)
    current, source = derive_current(
        columns, time_s, file_name=file_name, ocv_technique=ocv_technique
    )
    cycle = columns.get("cycle number")
    return BiologicColumns(
        time_s=time_s,
        voltage_v=np.asarray(columns[volt], np.float64),
        current_a=current,
        step=None if "Ns" not in names else np.asarray(columns["Ns"]).astype(np.int64),
        # EC-Lab counts cycles from 0; galvani gives the count as a float.
        cycle=None if cycle is None else np.rint(np.asarray(cycle, float)).astype(np.int64) + 1,
        temperature_c=columns.get("Temperature/°C"),
        current_from=source,
    )


def mpr_columns(mpr: object) -> dict[str, np.ndarray]:
    """galvani's MPRfile as name -> array, its packed flags (mode, ox/red) unpacked."""
    records = np.array(mpr.data)  # type: ignore[attr-defined]  # a copy out of the file buffer
    columns = {name: records[name] for name in records.dtype.names or () if name != "flags"}
    for flag in ("mode", "ox/red"):
        if flag in getattr(mpr, "flags_dict", {}):
            columns[flag] = np.asarray(mpr.get_flag(flag)).astype(np.int64)  # type: ignore[attr-defined]
    return columns


def mpr_is_ocv(mpr: object) -> bool:
    settings = next(
        (m for m in getattr(mpr, "modules", []) if m["shortname"].startswith(b"VMP Set")), None
    )
    return settings is not None and OCV_TECHNIQUE.encode() in settings["data"][:4096]


def mpr_acquisition_start(mpr: object) -> datetime | None:
    """The acquisition start EC-Lab keeps in the LOG module (galvani's ``timestamp``): the
    instrument PC's local clock, naive."""
    stamp = getattr(mpr, "timestamp", None)
    return stamp if isinstance(stamp, datetime) else None


@dataclass(frozen=True)
class MptHeader:
    header_index: int  # 0-based line of the column header
    fields: list[str]
    acquisition_start: datetime | None
    ocv_technique: bool


def mpt_header(lines: list[str], file_name: str) -> MptHeader:
    """Where an .mpt's table starts and what its header says. EC-Lab's header states its own
    length ("Nb header lines : 61", counting the column header line); an export without the
    header starts with the column header."""
    if lines and lines[0].startswith(("EC-Lab ASCII FILE", "BT-Lab ASCII FILE")):
        match = _NB_HEADER.search(lines[1]) if len(lines) > 1 else None
        if match is None:
            raise CyclerFileRejected(
                "unreadable",
                f"{file_name}: an EC-Lab text export whose line 2 does not state the header "
                f"length ('Nb header lines : N'; it reads {lines[1][:60]!r})"
                if len(lines) > 1
                else f"{file_name}: an EC-Lab text export with nothing after its first line",
            )
        index = int(match.group(1)) - 1
        if index >= len(lines):
            raise CyclerFileRejected(
                "truncated",
                f"{file_name}: the header states {index + 1} lines, the file stops after "
                f"{len(lines)}",
            )
    else:
        index = 0
    start = None
    for line in lines[:index]:
        found = _ACQUISITION.search(line)
        if found:
            start = parse_wall_clock(found.group(1))
            break
    fields = lines[index].rstrip("\r\n").split("\t")
    ocv = any(line.strip() == OCV_TECHNIQUE for line in lines[:index])
    return MptHeader(index, fields, start, ocv)


def read_mpt(path: Path, head: bytes) -> tuple[BiologicColumns, datetime | None]:
    """An EC-Lab .mpt text export, streamed: tab-separated, decimal point or comma."""
    name = path.name
    encoding = text_encoding(head)
    lines = head.decode(encoding, errors="replace").splitlines()
    header = mpt_header(lines, name)
    fields = [f.strip() for f in header.fields]
    wanted = {f: Column(i, f, None) for i, f in enumerate(fields) if f in MPT_COLUMNS}
    body = [line for line in lines[header.header_index + 1 : header.header_index + 6]]
    decimal_comma = any(re.search(r"\d,\d", line) for line in body)
    layout = Layout(header.header_index, "\t", header.fields, wanted, encoding, decimal_comma)
    columns, _, _ = read_table(path, layout, optional=frozenset({"Temperature/°C"}))
    start = header.acquisition_start
    data = biologic_columns(columns, file_name=name, ocv_technique=header.ocv_technique)
    if start is not None and data.time_s.size:
        start = start + timedelta(seconds=float(data.time_s[0]))
    return data, start
