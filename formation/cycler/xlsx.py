"""Arbin's Excel export (.xlsx), streamed row by row with openpyxl's read-only reader.

Arbin MITS Pro/Data Watcher writes one workbook per channel: an "Info" sheet, then the data on
sheets named "Channel_<n>-<id>" (one more sheet each time Excel's 1,048,576-row limit is hit, so
they are read in order and joined), and "StatisticByCycle" sheets. The data sheets have the CSV
export's columns with units in brackets: Data_Point, Test_Time(s), Date_Time, Step_Time(s),
Step_Index, Cycle_Index, Current(A), Voltage(V), Charge_Capacity(Ah), ... Units and signs are
those of the CSV export (formation.cycler.text).
"""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path

import numpy as np

from .errors import CyclerFileRejected
from .text import CHUNK_ROWS, TextTable, _joined, _unit_factor, find_columns, parse_wall_clock

XLSX_PARSER_NAME = "openpyxl"


def _float(value: object) -> float:
    if value is None or value == "":
        return math.nan
    if isinstance(value, int | float):
        return float(value)
    return float(str(value).strip().replace(",", "."))


def read_arbin_xlsx(path: Path) -> TextTable:
    import openpyxl

    name = path.name
    workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        sheets = [ws for ws in workbook.worksheets if ws.title.lower().startswith("channel")]
        if not sheets:
            sheets = list(workbook.worksheets)
        parts: dict[str, list[np.ndarray]] = {}
        roles_seen: dict | None = None
        started: datetime | None = None
        rows_read = 0
        sheet_names = ", ".join(ws.title for ws in workbook.worksheets)
        for ws in sheets:
            rows = ws.iter_rows(values_only=True)
            header = next(rows, None)
            if header is None:
                continue
            fields = ["" if v is None else str(v) for v in header]
            roles = find_columns(fields)
            if not {"time", "voltage", "current"} <= roles.keys():
                continue
            roles_seen = roles
            wanted = {k: c for k, c in roles.items() if k not in ("datetime", "state")}
            chunk: list[tuple] = []

            def flush(
                chunk: list[tuple],
                ws_title: str = ws.title,
                wanted: dict = wanted,
                before: int = 0,
            ) -> None:
                for key, col in wanted.items():
                    try:
                        values = [_float(row[col.index]) for row in chunk]
                    except (ValueError, IndexError):
                        for k, row in enumerate(chunk):
                            try:
                                _float(row[col.index])
                            except (ValueError, IndexError):
                                value = row[col.index] if col.index < len(row) else None
                                raise CyclerFileRejected(
                                    "unreadable",
                                    f"{name}: sheet {ws_title!r}, data row "
                                    f"{before + k + 1}, column {col.name!r}: "
                                    f"{value!r} is not a number",
                                ) from None
                        raise
                    parts.setdefault(key, []).append(np.array(values, dtype=np.float64))

            for row in rows:
                if row is None or all(v is None for v in row):
                    continue
                if started is None and "datetime" in roles:
                    started = parse_wall_clock(row[roles["datetime"].index])
                chunk.append(row)
                rows_read += 1
                if len(chunk) >= CHUNK_ROWS:
                    flush(chunk, before=rows_read - len(chunk))
                    chunk = []
            if chunk:
                flush(chunk, before=rows_read - len(chunk))
    finally:
        workbook.close()
    if roles_seen is None:
        raise CyclerFileRejected(
            "missing_columns",
            f"{name}: no sheet whose first row names a time, voltage and current column "
            f"(sheets: {sheet_names})",
        )
    if rows_read == 0:
        raise CyclerFileRejected("empty", f"{name}: the data sheets hold a header and no rows")
    columns = _joined(parts)
    factors = {
        role: _unit_factor(role, roles_seen[role], name)
        for role in ("time", "voltage", "current", "temperature")
        if role in roles_seen
    }
    temperature = None
    if "temperature" in columns:
        temperature = columns["temperature"] + factors["temperature"]

    def label(k: int) -> str:
        return f"data row {k + 1}"

    for required in ("time", "voltage", "current"):
        bad = np.flatnonzero(~np.isfinite(columns[required]))
        if bad.size:
            raise CyclerFileRejected(
                "unreadable", f"{name}: data row {bad[0] + 1} has no {required} value"
            )
    return TextTable(
        columns["time"] * factors["time"],
        columns["voltage"] * factors["voltage"],
        columns["current"] * factors["current"],
        columns["step"].astype(np.int64) if "step" in columns else None,
        columns["cycle"].astype(np.int64) if "cycle" in columns else None,
        temperature,
        label,
        started,
    )
