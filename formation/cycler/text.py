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

import bisect
import csv
import itertools
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
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
    # Wall-clock time of each row: only the first row's is read (the run's start).
    "datetime": ("datetime", "dpttime", "timestamp", "absolutetime", "realtime", "date"),
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
    started_at: datetime | None = None


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


# Rows parsed per chunk: the text of one chunk is all that is held at a time, so a 512 MiB export
# needs its numeric columns (8 bytes a value) and a few MiB of text, never the whole file as text.
CHUNK_ROWS = 50_000

# Wall-clock formats seen in the vendors' exports (Maccor "03/31/2016 16:05:31", Arbin
# "2017-07-02 14:39:13.123", EC-Lab "12/08/2023 09:49:52.346", European "31.03.2016 16:05:31").
DATETIME_FORMATS = (
    "%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S",
    "%m/%d/%Y %H:%M:%S.%f", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %I:%M:%S %p", "%m/%d/%y %H:%M:%S",
    "%d.%m.%Y %H:%M:%S.%f", "%d.%m.%Y %H:%M:%S", "%Y/%m/%d %H:%M:%S", "%Y.%m.%d %H:%M:%S",
)  # fmt: skip


def parse_wall_clock(value: object) -> datetime | None:
    """A row's wall-clock time: a datetime, a Unix epoch number (aware, UTC), or a text in one of
    DATETIME_FORMATS (naive: the cycler's local clock). None when it is none of those."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    else:
        text = str(value).strip().strip('"')
        if not text:
            return None
        for fmt in DATETIME_FORMATS:
            try:
                # The cycler's local clock, zone unknown here: the caller localises it.
                return datetime.strptime(text, fmt)  # noqa: DTZ007
            except ValueError:
                continue
        try:
            number = float(text)
        except ValueError:
            return None
    # An epoch in seconds between 2000 and 2100; anything else is not a time we can trust.
    if 946_684_800 <= number <= 4_102_444_800:
        return datetime.fromtimestamp(number, tz=UTC)
    return None


def _joined(parts: dict[str, list[np.ndarray]]) -> dict[str, np.ndarray]:
    """One array per column from its chunks, each column's chunks freed as soon as it is joined,
    so the peak is the columns plus one column's chunks, not twice the columns."""
    columns = {}
    for key in list(parts):
        chunks = parts.pop(key)
        columns[key] = np.concatenate(chunks) if chunks else np.zeros(0)
    return columns


class RowLabels:
    """'data row k (line n)' for a row index, without a line number stored per row: blank lines
    are rare, so only the rows after which the row-to-line offset changes are kept."""

    def __init__(self, first_line: int) -> None:
        self.rows: list[int] = [0]
        self.offsets: list[int] = [first_line]

    def add(self, row: int, line: int) -> None:
        if line - row != self.offsets[-1]:
            self.rows.append(row)
            self.offsets.append(line - row)

    def line(self, k: int) -> int:
        return k + self.offsets[bisect.bisect_right(self.rows, k) - 1]

    def __call__(self, k: int) -> str:
        return f"data row {k + 1} (line {self.line(k)})"


@dataclass(frozen=True)
class Layout:
    """Where a text table is: its header line, delimiter and width, and the columns wanted."""

    header_index: int  # 0-based line of the column header
    delimiter: str
    fields: list[str]
    columns: dict[str, Column]  # role or name -> column
    encoding: str
    decimal_comma: bool = False


def ends_with_newline(path: Path) -> bool:
    with path.open("rb") as handle:
        handle.seek(0, 2)
        if handle.tell() == 0:
            return False
        handle.seek(-1, 2)
        return handle.read(1) in (b"\n", b"\r")


def _rows(path: Path, layout: Layout) -> Iterator[tuple[int, list[list[str]], list[int]]]:
    """(index of the chunk's first row, its rows split into fields, their line numbers)."""
    with path.open(encoding=layout.encoding, errors="replace", newline="") as handle:
        numbered: Iterable[tuple[int, str]] = enumerate(handle, start=1)
        numbered = itertools.islice(numbered, layout.header_index + 1, None)
        first_row = 0
        while True:
            chunk = [
                (n, line) for n, line in itertools.islice(numbered, CHUNK_ROWS) if line.strip()
            ]
            if not chunk:
                # islice may have yielded only blank lines: keep going until the file ends.
                peek = next(numbered, None)
                if peek is None:
                    return
                numbered = itertools.chain([peek], numbered)
                continue
            lines = [line for _, line in chunk]
            rows = list(csv.reader(lines, delimiter=layout.delimiter))
            yield first_row, rows, [n for n, _ in chunk]
            first_row += len(rows)


def _numbers(
    values: list[str], *, decimal_comma: bool, blank_is_nan: bool
) -> tuple[np.ndarray | None, int]:
    """(float array, -1), or (None, index of the first value that is not a number)."""
    if decimal_comma:
        values = [v.replace(",", ".") for v in values]
    if blank_is_nan:
        values = [v if v.strip() else "nan" for v in values]
    try:
        return np.array(values, dtype=np.float64), -1
    except ValueError:
        for k, value in enumerate(values):
            try:
                float(value)
            except ValueError:
                return None, k
        raise


def _read_table_checked(
    path: Path,
    layout: Layout,
    *,
    optional: frozenset[str] = frozenset(),
    words: dict[str, Callable[[np.ndarray], np.ndarray]] | None = None,
) -> tuple[dict[str, np.ndarray], RowLabels, str | None]:
    """The careful reader: row by row in chunks, naming the row and line of any fault.

    ``optional`` columns may hold blanks (a missing reading: NaN); ``words`` maps a column of
    words (a State or Mode column) to a function turning a chunk of its values into numbers. The
    third item is the first row's text in a ``datetime`` column, if one is wanted.
    Raises CyclerFileRejected naming the row and line for a short row or a value that is not a
    number, as ``truncated`` when that is the last line and it has no line end (cut mid-row).
    """
    name = path.name
    words = words or {}
    clean_end = ends_with_newline(path)
    width = len(layout.fields)
    parts: dict[str, list[np.ndarray]] = {key: [] for key in layout.columns if key != "datetime"}
    labels = RowLabels(layout.header_index + 2)
    first_stamp: str | None = None
    total = 0
    chunks = _rows(path, layout)
    pending = next(chunks, None)
    while pending is not None:
        first_row, rows, numbers = pending
        pending = next(chunks, None)
        last_chunk = pending is None
        for k, line in enumerate(numbers):
            labels.add(first_row + k, line)
        total = first_row + len(rows)

        def fail(
            k: int,
            message: str,
            last_chunk: bool = last_chunk,
            rows: list = rows,
            first_row: int = first_row,
        ) -> None:
            cut = last_chunk and k == len(rows) - 1 and not clean_end
            raise CyclerFileRejected(
                "truncated" if cut else "unreadable",
                f"{name}: {labels(first_row + k)}{message}"
                + (" (the last line has no line end: the file was cut short)" if cut else ""),
            )

        widths = np.fromiter((len(row) for row in rows), dtype=np.int64, count=len(rows))
        short = np.flatnonzero(widths < width)
        if short.size:
            k = int(short[0])
            fail(k, f" has {len(rows[k])} fields, the header has {width}")
        if first_stamp is None and "datetime" in layout.columns:
            first_stamp = rows[0][layout.columns["datetime"].index]
        for key, col in layout.columns.items():
            if key == "datetime":
                continue
            values = [row[col.index] for row in rows]
            if key in words:
                parts[key].append(words[key](np.array([v.strip().upper() for v in values])))
                continue
            array, bad = _numbers(
                values, decimal_comma=layout.decimal_comma, blank_is_nan=key in optional
            )
            if array is None:
                fail(bad, f", column {col.name.strip()!r}: {values[bad]!r} is not a number")
            parts[key].append(array)
    if total == 0:
        raise CyclerFileRejected(
            "empty", f"{name}: header on line {layout.header_index + 1} but no data rows after it"
        )
    return _joined(parts), labels, first_stamp


def find_layout(path: Path, head: bytes) -> Layout:
    """The layout of a vendor text export (Arbin, Maccor, Bitrode, plain CSV) from its head."""
    name = path.name
    encoding = text_encoding(head)
    lines = head.decode(encoding, errors="replace").splitlines()
    if not "".join(lines).strip():
        raise CyclerFileRejected("empty", f"{name} holds no text ({len(head)} bytes of blanks)")
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
    # A semicolon- or tab-separated export from a European locale writes 3,1415.
    decimal_comma = False
    if delimiter != ",":
        body = [line for line in lines[header_index + 1 : header_index + 6] if line.strip()]
        decimal_comma = any(re.search(r"\d,\d", line) for line in body)
    return Layout(header_index, delimiter, fields, roles, encoding, decimal_comma)


def text_encoding(head: bytes) -> str:
    # Maccor writes ISO-8859-1 ("°C"); everything else seen is ASCII/UTF-8, with or without BOM.
    try:
        head[: len(head) - 8].decode("utf-8")  # the sniffed head may end inside a character
        return "utf-8-sig"
    except UnicodeDecodeError:
        return "latin-1"


def state_signs(states: np.ndarray) -> np.ndarray:
    """+1 for a charge word, -1 for a discharge word, 0 for anything else (rest, pause)."""
    return np.isin(states, list(CHARGE_WORDS)).astype(np.int8) - np.isin(
        states, list(DISCHARGE_WORDS)
    ).astype(np.int8)


def read_text_export(path: Path, head: bytes) -> TextTable:
    """Parse a vendor text export into SI columns; raise CyclerFileRejected."""
    name = path.name
    layout = find_layout(path, head)
    roles = layout.columns
    factors = {
        role: _unit_factor(role, roles[role], name)
        for role in ("time", "voltage", "current", "temperature")
        if role in roles
    }
    columns, labels, stamp = read_table(
        path, layout, optional=frozenset({"temperature"}), words={"state": state_signs}
    )
    time_s = columns["time"] * factors["time"]
    voltage = columns["voltage"] * factors["voltage"]
    current = columns["current"] * factors["current"]
    if "state" in columns:
        # The state word sets the sign where it names one; the current column gives the size.
        sign = columns["state"]
        current = np.where(sign != 0, np.abs(current) * sign, current)
    temperature = None
    if "temperature" in columns:
        temperature = columns["temperature"] + factors["temperature"]
    step = columns["step"].astype(np.int64) if "step" in columns else None
    cycle = columns["cycle"].astype(np.int64) if "cycle" in columns else None
    started = parse_wall_clock(stamp) if stamp is not None else None
    return TextTable(time_s, voltage, current, step, cycle, temperature, labels, started)


# The fast reader takes the file in blocks of this many bytes, cut at a line end.
BLOCK_BYTES = 16 << 20


class _NotFast(Exception):
    """The fast reader met something only the careful reader can describe."""


def _data_lines(path: Path, layout: Layout) -> Iterator[tuple[int, str]]:
    """(line number, text) of each non-blank line after the header, decoded."""
    with path.open(encoding=layout.encoding, errors="replace", newline="") as handle:
        numbered = itertools.islice(enumerate(handle, start=1), layout.header_index + 1, None)
        for number, line in numbered:
            if line.strip():
                yield number, line


class _LazyLabels:
    """Row labels found by reading the file again, only when a message needs one."""

    def __init__(self, path: Path, layout: Layout) -> None:
        self.path, self.layout = path, layout
        self.labels: RowLabels | None = None

    def __call__(self, k: int) -> str:
        if self.labels is None:
            self.labels = RowLabels(self.layout.header_index + 2)
            for row, (line, _) in enumerate(_data_lines(self.path, self.layout)):
                self.labels.add(row, line)
        return self.labels(k)


def _read_table_fast(
    path: Path,
    layout: Layout,
    words: dict[str, Callable[[np.ndarray], np.ndarray]],
) -> tuple[dict[str, np.ndarray], Callable[[int], str], str | None]:
    """numpy's C parser over blocks of BLOCK_BYTES: the wanted columns only, no per-row Python.
    Raises _NotFast at anything irregular (a blank or non-numeric value, a short row, a last
    line without a line end), for the careful reader to name."""
    import io

    numeric = {k: c.index for k, c in layout.columns.items() if k != "datetime" and k not in words}
    worded = {k: c.index for k, c in layout.columns.items() if k in words}
    parts: dict[str, list[np.ndarray]] = {key: [] for key in (*numeric, *worded)}
    stamp: str | None = None
    if "datetime" in layout.columns:
        first = next(_data_lines(path, layout), None)
        if first is not None:
            fields = next(csv.reader([first[1]], delimiter=layout.delimiter))
            index = layout.columns["datetime"].index
            stamp = fields[index] if index < len(fields) else None
    comma = bytes.maketrans(b",", b".")

    def parse(block: bytes) -> None:
        if layout.decimal_comma:
            block = block.translate(comma)
        text = io.StringIO(block.decode(layout.encoding, errors="replace"))
        try:
            if numeric:
                table = np.loadtxt(text, delimiter=layout.delimiter, usecols=tuple(numeric.values()),
                                   dtype=np.float64, comments=None, quotechar='"', ndmin=2)  # fmt: skip
                for j, key in enumerate(numeric):
                    parts[key].append(table[:, j])
            for key, index in worded.items():
                text.seek(0)
                values = np.loadtxt(text, delimiter=layout.delimiter, usecols=(index,), dtype=str,
                                    comments=None, quotechar='"', ndmin=1)  # fmt: skip
                parts[key].append(words[key](np.char.upper(np.char.strip(values))))
        except ValueError as exc:
            raise _NotFast from exc

    with path.open("rb") as handle:
        for _ in range(layout.header_index + 1):
            handle.readline()
        leftover = b""
        while True:
            block = handle.read(BLOCK_BYTES)
            if not block:
                break
            data = leftover + block
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                leftover = data
                continue
            parse(data[:cut])
            leftover = data[cut:]
    if leftover.strip():
        # The last line has no line end: complete, or cut mid-row? The careful reader decides.
        raise _NotFast
    columns = _joined(parts)
    if not columns or any(len(v) == 0 for v in columns.values()):
        raise _NotFast  # no rows: the careful reader says so with the header's line
    if len({len(v) for v in columns.values()}) != 1:
        raise _NotFast
    return columns, _LazyLabels(path, layout), stamp


def read_table(
    path: Path,
    layout: Layout,
    *,
    optional: frozenset[str] = frozenset(),
    words: dict[str, Callable[[np.ndarray], np.ndarray]] | None = None,
) -> tuple[dict[str, np.ndarray], Callable[[int], str], str | None]:
    """Stream the rows after the header into one float64 array per wanted column.

    Two readers, one result: numpy's C parser over large blocks for a regular file (a million
    rows in about a second), and, at anything it will not take, the careful reader, which goes
    row by row and names the row, line and column of the fault (see _read_table_checked).
    ``optional`` columns may hold blanks (NaN); ``words`` maps a column of words (a State or
    Mode column) to a function turning its values into numbers; the third item is the first
    row's text in a ``datetime`` column, if one is wanted.
    """
    words = words or {}
    try:
        return _read_table_fast(path, layout, words)
    except _NotFast:
        return _read_table_checked(path, layout, optional=optional, words=words)
