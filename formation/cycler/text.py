"""Readers for the text exports: Arbin CSV, Maccor tab-separated text, and plain CSV (Bitrode...).

One engine, three column profiles. Units come from the header where it states them ("Time(s)",
"Test (Min)", "Current(mA)", "I/mA", "voltage_mv"); where it does not, from the vendor's documented
default (Arbin: s, A, V, degC; Maccor: "Amps" and "Volts" name their unit; a plain CSV: SI, i.e.
s, A, V, degC). A unit we do not know is rejected (unknown_units), never guessed.

Sign conventions as found in the sample files and vendors' exports:
* Arbin: Current is signed, positive = charge (sample: +1.1 A while voltage and Charge_Capacity
  rise, -0.48 A while Discharge_Capacity rises).
* Bitrode: Current(A) is signed, positive = charge (sample: +15.3 A in Mode CHRG, -30.6 A in DCHG).
* Maccor: Amps is written unsigned; the State column says C (charge) or D (discharge) and R (rest).
Whenever a State/Mode column says charge or discharge, that word sets the sign and the current
column only gives the magnitude; this is a no-op on already-signed exports and fixes unsigned ones.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import CyclerFileRejected

TEXT_PARSER = "mes-csv 1"

# Multiplier to SI per unit spelling (lower case, spaces removed).
TIME_UNITS = {
    "s": 1.0, "sec": 1.0, "secs": 1.0, "second": 1.0, "seconds": 1.0,
    "ms": 1e-3,
    "min": 60.0, "mins": 60.0, "minute": 60.0, "minutes": 60.0,
    "h": 3600.0, "hr": 3600.0, "hrs": 3600.0, "hour": 3600.0, "hours": 3600.0,
}  # fmt: skip
CURRENT_UNITS = {
    "a": 1.0, "amp": 1.0, "amps": 1.0, "ampere": 1.0,
    "ma": 1e-3, "ua": 1e-6, "µa": 1e-6, "μa": 1e-6, "na": 1e-9,
}  # fmt: skip
VOLTAGE_UNITS = {"v": 1.0, "volt": 1.0, "volts": 1.0, "mv": 1e-3, "uv": 1e-6, "µv": 1e-6}
# Temperature: offset to add to get degC.
TEMPERATURE_UNITS = {
    "c": 0.0, "°c": 0.0, "degc": 0.0, "degreesc": 0.0, "celsius": 0.0, "℃": 0.0, "k": -273.15,
}  # fmt: skip

# Column names, normalised (lower case, no spaces, underscores, hyphens or dots), by role. The
# first alias present in a header wins, so "Test_Time" is taken before "Step_Time" can't be.
ALIASES: dict[str, tuple[str, ...]] = {
    "time": ("testtime", "totaltime", "time", "elapsedtime", "runtime", "test"),
    "voltage": ("voltage", "volts", "volt", "cellvoltage", "ecell", "ewe", "potential"),
    "current": ("current", "amps", "amp", "cur", "i"),
    "step": ("stepindex", "step", "stepnumber", "ns"),
    "cycle": ("cycleindex", "cycle", "cyc#", "cyclenumber", "cyclecount"),
    "temperature": (
        "temperature", "temp", "celltemperature", "auxtemperature1", "auxtemperature",
    ),
    "state": ("state", "mode", "md"),
}  # fmt: skip
UNITS: dict[str, dict[str, float]] = {
    "time": TIME_UNITS,
    "voltage": VOLTAGE_UNITS,
    "current": CURRENT_UNITS,
    "temperature": TEMPERATURE_UNITS,
}
DEFAULT_UNITS = {"time": "s", "voltage": "v", "current": "a", "temperature": "c"}
# Names that carry their unit in the word itself.
NAME_UNITS = {"amps": "a", "amp": "a", "volts": "v", "volt": "v"}

CHARGE_WORDS = frozenset({"C", "CHG", "CHRG", "CHARGE", "CC_CHG", "CCCV_CHG", "CV_CHG"})
DISCHARGE_WORDS = frozenset(
    {"D", "DCHG", "DCHRG", "DIS", "DSG", "DISCHARGE", "CC_DCHG", "CCCV_DCHG", "CV_DCHG"}
)

_BRACKET = re.compile(r"^(?P<base>.*?)\s*[\(\[](?P<unit>[^\)\]]*)[\)\]]\s*$")
_UNDERSCORE_UNIT = re.compile(r"^(?P<base>.+?)_(?P<unit>[a-zµμ°]+)$")

HEADER_SEARCH_LINES = 40


@dataclass(frozen=True)
class Column:
    index: int
    name: str  # as written in the file
    unit: str | None  # as written, None when the header states none


@dataclass
class TextTable:
    """Numeric columns of a text export, in file units, before the shared checks."""

    time_s: np.ndarray
    voltage_v: np.ndarray
    current_a: np.ndarray
    step: np.ndarray | None
    cycle: np.ndarray | None
    temperature_c: np.ndarray | None
    row_label: Callable[[int], str]


def _norm(text: str) -> str:
    return re.sub(r"[\s_\-.]+", "", text.strip().strip('"').lower())


def split_header_name(name: str) -> tuple[str, str | None]:
    """'Time(s)' -> ('time', 's'); 'I/mA' -> ('i', 'mA'); 'Amps' -> ('amps', None)."""
    raw = name.strip().strip('"').strip()
    match = _BRACKET.match(raw)
    if match and match.group("base"):
        return _norm(match.group("base")), match.group("unit").strip()
    if "/" in raw:
        base, unit = raw.rsplit("/", 1)
        if base.strip():
            return _norm(base), unit.strip()
    return _norm(raw), None


def find_columns(header: list[str]) -> dict[str, Column]:
    """Map role -> column for the roles present; the first alias of a role that matches wins."""
    parsed = [split_header_name(name) for name in header]
    found: dict[str, Column] = {}
    for role, aliases in ALIASES.items():
        for alias in aliases:
            # Counters and state words carry no unit: Maccor's "Step (Min)" is a time, not the step.
            hit = next(
                (
                    i
                    for i, (base, unit) in enumerate(parsed)
                    if base == alias and (role in UNITS or unit is None)
                ),
                None,
            )
            if hit is None:  # "voltage_mv", "current_a": a unit after an underscore
                for i, name in enumerate(header):
                    match = _UNDERSCORE_UNIT.match(name.strip().strip('"').lower())
                    if match and _norm(match.group("base")) == alias and role in UNITS:
                        if match.group("unit") in UNITS[role]:
                            found[role] = Column(i, header[i], match.group("unit"))
                            break
                if role in found:
                    break
                continue
            found[role] = Column(hit, header[hit], parsed[hit][1])
            break
    return found


def sniff_delimiter(line: str) -> str:
    counts = {d: line.count(d) for d in ("\t", ",", ";")}
    return max(counts, key=lambda d: counts[d])


def find_header(lines: list[str]) -> tuple[int, str, list[str], dict[str, Column]] | None:
    """(line index, delimiter, header fields, roles) of the first line naming a known column."""
    for index, line in enumerate(lines[:HEADER_SEARCH_LINES]):
        if not line.strip():
            continue
        delimiter = sniff_delimiter(line)
        fields = next(csv.reader([line], delimiter=delimiter))
        if len(fields) < 2:
            continue
        roles = find_columns(fields)
        if roles.keys() & {"time", "voltage", "current"}:
            return index, delimiter, fields, roles
    return None


def classify_text(lines: list[str]) -> str | None:
    """'maccor_txt', 'arbin_csv', 'csv' or None, from the header line alone."""
    if lines and lines[0].lower().startswith("today's date"):
        return "maccor_txt"
    found = find_header(lines)
    if found is None:
        return None
    _, _, fields, _ = found
    names = {split_header_name(f)[0] for f in fields}
    if "rec#" in names and ("amps" in names or "amphr" in names):
        return "maccor_txt"
    if "datapoint" in names and "testtime" in names and ("stepindex" in names):
        return "arbin_csv"
    return "csv"


def decode(raw: bytes) -> str:
    # Maccor writes ISO-8859-1 ("°C"); everything else seen is ASCII/UTF-8, with or without BOM.
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _unit_factor(role: str, column: Column, file_name: str) -> float:
    unit = column.unit
    if unit is None:
        unit = NAME_UNITS.get(_norm(column.name), DEFAULT_UNITS[role])
    key = re.sub(r"\s+", "", unit.lower())
    table = UNITS[role]
    if key not in table:
        known = ", ".join(sorted(table))
        raise CyclerFileRejected(
            "unknown_units",
            f"{file_name}: column {column.name!r} (the {role}) is in unit {unit!r}, "
            f"which is not one of: {known}",
        )
    return table[key]


def read_text_export(path: Path, raw: bytes, format: str) -> TextTable:
    """Parse a text export of the given format into SI columns; raise CyclerFileRejected."""
    name = path.name
    text = decode(raw)
    lines = text.splitlines()
    if not text.strip():
        raise CyclerFileRejected("empty", f"{name} holds no text ({len(raw)} bytes of blanks)")
    header = find_header(lines)
    if header is None:
        first = lines[0][:80] if lines else ""
        raise CyclerFileRejected(
            "missing_columns",
            f"{name}: no header line naming a time, voltage or current column in the first "
            f"{HEADER_SEARCH_LINES} lines (line 1 reads {first!r})",
        )
    header_index, delimiter, fields, roles = header
    missing = [role for role in ("time", "voltage", "current") if role not in roles]
    if missing:
        raise CyclerFileRejected(
            "missing_columns",
            f"{name}: header on line {header_index + 1} has no {' or '.join(missing)} column "
            f"(columns: {', '.join(f.strip() for f in fields)})",
        )
    factors = {
        role: _unit_factor(role, roles[role], name)
        for role in ("time", "voltage", "current", "temperature")
        if role in roles
    }

    # Data rows: every non-blank line after the header, with its 1-based line number kept for
    # messages. Blank lines (some exporters end with several) are skipped.
    body = [(number, line) for number, line in enumerate(lines, start=1)][header_index + 1 :]
    body = [(number, line) for number, line in body if line.strip()]
    if not body:
        raise CyclerFileRejected(
            "empty", f"{name}: header on line {header_index + 1} but no data rows after it"
        )
    numbers = [number for number, _ in body]
    rows = list(csv.reader((line for _, line in body), delimiter=delimiter))
    ends_cleanly = text.endswith(("\n", "\r"))
    width = len(fields)

    def label(k: int) -> str:
        return f"data row {k + 1} (line {numbers[k]})"

    short = [k for k, row in enumerate(rows) if len(row) < width]
    if short:
        k = short[0]
        if k == len(rows) - 1 and not ends_cleanly:
            raise CyclerFileRejected(
                "truncated",
                f"{name}: the last line ({label(k)}) stops after {len(rows[k])} of {width} "
                f"fields with no line end, at byte {len(raw)}: the file was cut mid-row",
            )
        raise CyclerFileRejected(
            "unreadable",
            f"{name}: {label(k)} has {len(rows[k])} fields, the header has {width}",
        )

    def column(role: str, *, optional: bool = False) -> np.ndarray:
        col = roles[role]
        values = [row[col.index].strip() for row in rows]
        if optional:  # a blank temperature reading is a missing reading, not a broken file
            values = [v if v else "nan" for v in values]
        try:
            return np.array(values, dtype=np.float64)
        except ValueError:
            for k, value in enumerate(values):
                try:
                    float(value)
                except ValueError:
                    check = "truncated" if k == len(rows) - 1 and not ends_cleanly else "unreadable"
                    raise CyclerFileRejected(
                        check,
                        f"{name}: {label(k)}, column {col.name.strip()!r}: {value!r} is not a "
                        "number"
                        + (
                            " (the last line has no line end: cut short)"
                            if check == "truncated"
                            else ""
                        ),
                    ) from None
            raise

    time_s = column("time") * factors["time"]
    voltage = column("voltage") * factors["voltage"]
    current = column("current") * factors["current"]
    if "state" in roles:
        states = np.array([row[roles["state"].index].strip().upper() for row in rows])
        magnitude = np.abs(current)
        is_charge = np.isin(states, list(CHARGE_WORDS))
        is_discharge = np.isin(states, list(DISCHARGE_WORDS))
        current = np.where(is_charge, magnitude, np.where(is_discharge, -magnitude, current))
    temperature = None
    if "temperature" in roles:
        temperature = column("temperature", optional=True) + factors["temperature"]
    step = column("step").astype(np.int64) if "step" in roles else None
    cycle = column("cycle").astype(np.int64) if "cycle" in roles else None
    return TextTable(time_s, voltage, current, step, cycle, temperature, label)
