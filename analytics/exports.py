"""Measurements exported for analysis elsewhere: each reading joined with its cell, batch,
design, line, station, step, equipment, recipe version, the cell's lots and the time, for the
results a quality selection (quality.selection) chooses, optionally of one parameter.

Memory stays bounded whatever the size: PostgreSQL writes the rows with `COPY (SELECT ...) TO
STDOUT`, which psycopg hands over one row at a time. CSV goes straight to the response in chunks;
XLSX is written row by row by XlsxWriter in constant_memory mode (each row flushed to a temporary
file) to a temporary file that is then streamed.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

import xlsxwriter
from django.db import connection
from django.utils import timezone

from batches.models import Batch, Cell, Consumption, MaterialLot, Measurement, ProcessRun
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


def _table(model: type) -> str:
    return model._meta.db_table


def measurements_sql(
    selection: Selection, parameter: str = "", *, as_text: bool = False
) -> tuple[str, list[Any]]:
    """The SELECT of the export and its parameters, in the order results occurred. `as_text`:
    the columns as CSV shows them (occurred_at in RFC 3339, in the session's zone: UTC under
    Django; in_spec true or false)."""
    selected, params = selection.runs().order_by().values("id", "cell_id").query.sql_with_params()
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
        FROM {_table(Measurement)} m
        JOIN {_table(ProcessRun)} r ON r.id = m.run_id
        JOIN {_table(Cell)} c ON c.id = r.cell_id
        JOIN {_table(Batch)} b ON b.id = c.batch_id
        JOIN {_table(CellDesign)} d ON d.id = b.design_id
        JOIN {_table(Station)} s ON s.id = r.station_id
        JOIN {_table(Line)} l ON l.id = s.line_id
        JOIN {_table(RouteStep)} st ON st.id = r.step_id
        JOIN {_table(RecipeVersion)} rv ON rv.id = r.recipe_version_id
        JOIN {_table(Recipe)} rc ON rc.id = rv.recipe_id
        LEFT JOIN cell_lots cl ON cl.cell_id = r.cell_id
        WHERE r.id IN (SELECT id FROM selected) {"AND m.name = %s" if parameter else ""}
        ORDER BY r.finished_at, r.id, m.name
    """
    return sql, [*params, *([parameter] if parameter else [])]


def csv_chunks(selection: Selection, parameter: str = "") -> Iterator[bytes]:
    """The export as CSV (a header, then a row per measurement), in chunks of about
    CSV_CHUNK_BYTES. The query runs when the first chunk is asked for."""
    sql, params = measurements_sql(selection, parameter, as_text=True)
    connection.ensure_connection()
    with (
        connection.wrap_database_errors,
        connection.connection.cursor() as cursor,
        cursor.copy(f"COPY ({sql}) TO STDOUT (FORMAT csv, HEADER)", params) as copy,
    ):
        chunk = bytearray()
        for row in copy:  # one row per block from libpq
            chunk += row
            if len(chunk) >= CSV_CHUNK_BYTES:
                yield bytes(chunk)
                chunk.clear()
        if chunk:
            yield bytes(chunk)


def measurement_rows(selection: Selection, parameter: str = "") -> Iterator[tuple]:
    """The export's rows as Python values (occurred_at aware), one at a time."""
    sql, params = measurements_sql(selection, parameter)
    connection.ensure_connection()
    with (
        connection.wrap_database_errors,
        connection.connection.cursor() as cursor,
        cursor.copy(f"COPY ({sql}) TO STDOUT (FORMAT binary)", params) as copy,
    ):
        copy.set_types([column.type for column in COLUMNS])
        yield from copy.rows()


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
