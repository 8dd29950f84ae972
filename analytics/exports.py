"""Measurements exported for analysis elsewhere: each reading joined with its cell, batch,
design, line, station, step, equipment, recipe version, the cell's lots and the time, for the
results a quality selection (quality.selection) chooses, optionally of one parameter.

Memory stays bounded whatever the size: PostgreSQL writes the rows with `COPY (SELECT ...) TO
STDOUT`, which psycopg hands over one row at a time. CSV goes straight to the response in chunks;
XLSX is written row by row by XlsxWriter in constant_memory mode (each row flushed to a temporary
file) to a temporary file that is then streamed.

The first rows come at once whatever the size: the results are exported in windows of their time
(`windows`), one COPY each, in one REPEATABLE READ snapshot. A single statement over a year would
sort and join everything before its first row.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import IO, Any

import xlsxwriter
from django.db import connection, transaction
from django.utils import timezone

from batches.models import Batch, Cell, Consumption, MaterialLot, Measurement
from core.validation import AHEAD_ALLOWED
from lines.models import CellDesign, Line, Recipe, RecipeVersion, RouteStep, Station
from quality.selection import Selection


@dataclass(frozen=True)
class Column:
    name: str
    sql: str  # over m (measurement), r (run), c (cell), b, d, l, s, st, rv, rc, cl (lots)
    type: str  # PostgreSQL's name, for reading the binary COPY
    text: str = ""  # the SQL for CSV where it differs: RFC 3339 times, true/false


# The columns in order. `lots` are the cell's consumed lots as role=code pairs, space-separated.
COLUMNS = [
    Column("serial", "c.serial::text", "text"),
    Column("batch", "b.code::text", "text"),
    Column("design", "d.code::text", "text"),
    Column("line", "l.code::text", "text"),
    Column("station", "s.code::text", "text"),
    Column("step", "st.station_kind::text", "text"),
    Column("equipment", "r.equipment_ref::text", "text"),
    Column("recipe", "rc.name::text", "text"),
    Column("recipe_version", "rv.version::int8", "int8"),
    Column("lots", "coalesce(cl.lots, '')", "text"),
    Column("occurred_at", "r.finished_at", "timestamptz", "to_json(r.finished_at) #>> '{}'"),
    Column("parameter", "m.name::text", "text"),
    Column("value", "m.value", "float8"),
    Column("unit", "m.unit::text", "text"),
    Column("min", "m.min", "float8"),
    Column("max", "m.max", "float8"),
    Column("in_spec", "m.in_spec", "bool", "m.in_spec::text"),
    Column("verdict", "r.verdict::text", "text"),
]
HEADER = [column.name for column in COLUMNS]

FORMATS = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
CSV_CHUNK_BYTES = 256 * 1024
# An Excel sheet holds 1,048,576 rows; the header takes one of them on each sheet.
XLSX_ROWS_PER_SHEET = 1_048_575
# The first window of the results' time exported; the next ones widen while they hold few rows
# and narrow (down to MIN_WINDOW) when they hold more than WINDOW_ROWS.
FIRST_WINDOW = timedelta(minutes=5)
# What the export reads of each selected run (`r` in COLUMNS).
RUN_FIELDS = (
    "id", "cell_id", "station_id", "step_id", "recipe_version_id", "equipment_ref",
    "finished_at", "recorded_at", "verdict",
)  # fmt: skip
MIN_WINDOW = timedelta(seconds=10)
WINDOW_ROWS = 20_000


def _table(model: type) -> str:
    return model._meta.db_table


def measurements_sql(
    selection: Selection,
    parameter: str = "",
    *,
    window: tuple[datetime, datetime],
    as_text: bool = False,
) -> tuple[str, list[Any]]:
    """The SELECT of the export's rows whose results occurred in `window` (from, until: half
    open) and its parameters, in the order results occurred. `as_text`: the columns as CSV
    shows them (occurred_at in RFC 3339, in the session's zone: UTC under Django; in_spec true
    or false)."""
    start, stop = window
    runs = selection.runs().filter(finished_at__gte=start, finished_at__lt=stop).order_by()
    selected, params = runs.values(*RUN_FIELDS).query.sql_with_params()
    columns = ", ".join(
        f'{(as_text and column.text) or column.sql} AS "{column.name}"' for column in COLUMNS
    )
    sql = f"""
        WITH selected AS ({selected}),
        cell_lots AS (
            SELECT k.cell_id,
                   string_agg(k.role || '=' || lot.code, ' ' ORDER BY k.role, lot.code) AS lots
            FROM {_table(Consumption)} k
            JOIN {_table(MaterialLot)} lot ON lot.id = k.lot_id
            WHERE k.cell_id IN (SELECT cell_id FROM selected)
            GROUP BY k.cell_id
        )
        SELECT {columns}
        FROM selected r
        -- recorded_at is the run's (the partition key): PostgreSQL reads one month per run.
        JOIN {_table(Measurement)} m ON m.run_id = r.id AND m.recorded_at = r.recorded_at
        JOIN {_table(Cell)} c ON c.id = r.cell_id
        JOIN {_table(Batch)} b ON b.id = c.batch_id
        JOIN {_table(CellDesign)} d ON d.id = b.design_id
        JOIN {_table(Station)} s ON s.id = r.station_id
        JOIN {_table(Line)} l ON l.id = s.line_id
        JOIN {_table(RouteStep)} st ON st.id = r.step_id
        JOIN {_table(RecipeVersion)} rv ON rv.id = r.recipe_version_id
        JOIN {_table(Recipe)} rc ON rc.id = rv.recipe_id
        LEFT JOIN cell_lots cl ON cl.cell_id = r.cell_id
        WHERE m.recorded_at >= %s {"AND m.name = %s" if parameter else ""}
        ORDER BY r.finished_at, r.id, m.name
    """
    # A result's time is at most AHEAD_ALLOWED past its arrival: older months hold none of it.
    return sql, [*params, start - AHEAD_ALLOWED, *([parameter] if parameter else [])]


@contextmanager
def _snapshot() -> Iterator[Any]:
    """A psycopg cursor in a read-only REPEATABLE READ transaction: every window's COPY sees
    the same results, so a result recorded during the export is in it wholly or not at all.
    (Inside a transaction already, that one's.)"""
    outermost = not connection.in_atomic_block
    with transaction.atomic(), connection.wrap_database_errors:
        connection.ensure_connection()
        with connection.connection.cursor() as cursor:
            if outermost:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            yield cursor


def _copied(selection: Selection, parameter: str, *, as_text: bool) -> Iterator[Any]:
    """The export's rows window after window of the results' time, oldest first, in one
    snapshot: CSV lines (as_text) or tuples; None after each window that held rows. A window
    widens while it holds few rows and narrows when it holds many, so each COPY stays small."""
    with _snapshot() as cursor:
        runs = selection.runs().values("finished_at")
        first, first_params = runs.order_by("finished_at")[:1].query.sql_with_params()
        last, last_params = runs.order_by("-finished_at")[:1].query.sql_with_params()
        cursor.execute(f"SELECT ({first}), ({last})", [*first_params, *last_params])
        start, end = cursor.fetchone()
        width = FIRST_WINDOW
        while start is not None and start <= end:
            window = (start, start + width)
            sql, params = measurements_sql(selection, parameter, window=window, as_text=as_text)
            rows = 0
            with cursor.copy(
                f"COPY ({sql}) TO STDOUT (FORMAT {'csv' if as_text else 'binary'})", params
            ) as copy:
                if not as_text:
                    copy.set_types([column.type for column in COLUMNS])
                for row in copy if as_text else copy.rows():  # one row per block from libpq
                    rows += 1
                    yield row
            if rows:
                yield None
            start = window[1]
            if rows < WINDOW_ROWS // 4:
                width *= 2
            elif rows > WINDOW_ROWS and width > MIN_WINDOW:
                width /= 2


def csv_chunks(selection: Selection, parameter: str = "") -> Iterator[bytes]:
    """The export as CSV (a header, then a row per measurement), in chunks of about
    CSV_CHUNK_BYTES, the first one as soon as the first window's rows are there. The queries
    run when the first chunk is asked for."""
    chunk = bytearray(",".join(HEADER).encode() + b"\n")
    sent = False
    for row in _copied(selection, parameter, as_text=True):
        if row is not None:
            chunk += row
        if len(chunk) >= CSV_CHUNK_BYTES or (row is None and not sent):
            yield bytes(chunk)
            chunk.clear()
            sent = True
    if chunk:
        yield bytes(chunk)


def measurement_rows(selection: Selection, parameter: str = "") -> Iterator[tuple]:
    """The export's rows as Python values (occurred_at aware), one at a time."""
    return (row for row in _copied(selection, parameter, as_text=False) if row is not None)


def write_xlsx(selection: Selection, parameter: str = "") -> IO[bytes]:
    """The export as an XLSX workbook in a temporary file (removed once closed), at its start.

    occurred_at is written as a date and time in the plant's time zone (Excel has no zones);
    beyond one sheet's rows the export goes on in another sheet.
    """
    file = tempfile.TemporaryFile(suffix=".xlsx")  # the response closes it
    zone = timezone.get_default_timezone()
    header = [f"occurred_at ({zone.key})" if name == "occurred_at" else name for name in HEADER]
    occurred = HEADER.index("occurred_at")
    workbook = xlsxwriter.Workbook(file, {"constant_memory": True})
    bold = workbook.add_format({"bold": True})
    when = workbook.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
    sheet, row_number = None, XLSX_ROWS_PER_SHEET
    for row in measurement_rows(selection, parameter):
        if row_number == XLSX_ROWS_PER_SHEET:
            sheets = len(workbook.worksheets())
            sheet = workbook.add_worksheet(
                "measurements" if not sheets else f"measurements ({sheets + 1})"
            )
            sheet.write_row(0, 0, header, bold)
            sheet.set_column(occurred, occurred, 20)
            row_number = 0
        row_number += 1
        values = list(row)
        at, values[occurred] = values[occurred], None
        sheet.write_row(row_number, 0, values)
        sheet.write_datetime(row_number, occurred, at.astimezone(zone).replace(tzinfo=None), when)
    if sheet is None:
        workbook.add_worksheet("measurements").write_row(0, 0, header, bold)
    workbook.close()
    file.seek(0)
    return file
