"""Writing many rows in few statements, where Django's bulk methods cost more than the writes.

Station results arrive by the thousand: each brings a run, several measurements and an audit
event, and an inbox row and a cell to update. These helpers write them with binary COPY and
UPDATE ... FROM unnest (the arrays bound by the server, in binary), converting each value as the
field would on a save.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from functools import partial
from operator import attrgetter
from typing import Any

import psycopg
from django.db import connection, connections, models

# Fields whose Python value is already what PostgreSQL takes: their get_db_prep_save chain
# (four calls a value) only returns it. Exact types: a subclass may convert.
_AS_IS = (
    models.AutoField,
    models.BigAutoField,
    models.IntegerField,
    models.BigIntegerField,
    models.PositiveIntegerField,
    models.PositiveSmallIntegerField,
    models.SmallIntegerField,
    models.FloatField,
    models.BooleanField,
    models.CharField,
    models.SlugField,
    models.TextField,
)


def _to_db(field: models.Field, db: Any) -> Callable[[Any], Any] | None:
    """How to turn the field's value into the database's: None when it is taken as it is."""
    target = field.target_field if isinstance(field, models.ForeignKey) else field
    if type(target) in _AS_IS:
        return None
    convert = partial(field.get_db_prep_save, connection=db)
    if type(field) is models.DateTimeField:
        # An aware datetime is taken as it is; a naive one gets Django's warning and zone.
        return lambda value: value if value is None or value.tzinfo else convert(value)
    return convert


def _value_of(field: models.Field) -> Callable[[models.Model], Any]:
    """Reads the value a save would write: pre_save where the field sets it (auto_now_add)."""
    if type(field).pre_save is models.Field.pre_save:
        return attrgetter(field.attname)
    return partial(field.pre_save, add=True)


def update_rows(
    objs: Sequence[models.Model], fields: Sequence[str], *, partition_key: str = ""
) -> None:
    """Write `fields` of `objs` (one model) as one UPDATE, the values as one array per column.

    Django's bulk_update builds a CASE WHEN per field and row: for a chunk of a few hundred inbox
    rows it spends about a second of Python compiling it; here the arrays travel bound, in binary.
    On a table partitioned by month (core/partitions.py), `partition_key` names its key:
    the rows' earliest and latest values bound the statement, so only their partitions are
    planned and searched, not every month's.
    """
    if not objs:
        return
    db = connections[connection.alias]  # the wrapper itself, not the per-thread proxy
    meta = type(objs[0])._meta
    columns = [meta.pk, *(meta.get_field(name) for name in fields)]
    params = []
    for field in columns:
        values = [getattr(obj, field.attname) for obj in objs]
        convert = _to_db(field, db)
        params.append(values if convert is None else [convert(value) for value in values])
    names = [db.ops.quote_name(field.column) for field in columns]
    table = db.ops.quote_name(meta.db_table)
    if not partition_key:
        arrays = ", ".join(f"%b::{field.db_type(db)}[]" for field in columns)
        assignments = ", ".join(f"{name} = v.{name}" for name in names[1:])
        execute_bound(
            f"UPDATE {table} SET {assignments} FROM unnest({arrays}) AS v({', '.join(names)}) "
            f"WHERE {table}.{names[0]} = v.{names[0]}",
            params,
        )
        return
    # Partitioned: each row found by its id among the arrays' (an index probe each) and its
    # values read at its id's place. Joined with unnest() instead, the key's range (newer than
    # the partition's statistics, so estimated at one row) made PostgreSQL read every row of
    # the month in that range and compare each with every row of the chunk.
    key = meta.get_field(partition_key)
    keys = [getattr(obj, key.attname) for obj in objs]
    arrays = ", ".join(
        f"%b::{field.db_type(db)}[] AS {name}" for field, name in zip(columns, names, strict=True)
    )
    pk = f"{table}.{names[0]}"
    assignments = ", ".join(
        f"{name} = v.{name}[array_position(v.{names[0]}, {pk})]" for name in names[1:]
    )
    execute_bound(
        f"UPDATE {table} SET {assignments} FROM (SELECT {arrays}) AS v WHERE {pk} = ANY(v.{names[0]})"
        f" AND {table}.{db.ops.quote_name(key.column)} BETWEEN %b AND %b",
        [*params, min(keys), max(keys)],
    )


def execute_bound(sql: str, params: Sequence) -> list[tuple]:
    """Run one statement with its parameters bound by the server; return its rows.

    Django's psycopg cursors bind on the client: each element of an array parameter is escaped
    into the SQL text in Python, which for a 1000-row intake took longer than the insert (40-80 ms
    of CPU against 3 ms). Here a plain psycopg cursor on the same connection, in the same
    transaction, sends the parameters written `%b` in binary, arrays as they are. (Like COPY
    below, it bypasses Django's query logging.)
    """
    db = connections[connection.alias]
    db.ensure_connection()
    with db.wrap_database_errors, psycopg.Cursor(db.connection) as cursor:
        cursor.execute(sql, params, binary=True)
        return cursor.fetchall() if cursor.description else []


def copy_objects(objs: Sequence[models.Model], *, with_ids: bool = False) -> None:
    """Insert unsaved instances of one model with binary COPY.

    Values are read and converted by each field as a save would (auto_now_add included). With
    `with_ids`, the instances first get their primary keys from the table's sequence, so rows
    pointing at them can be written next; otherwise they are left without. No signals are sent
    (as with bulk_create).
    """
    if not objs:
        return
    db = connections[connection.alias]
    model = type(objs[0])
    fields = [f for f in model._meta.concrete_fields if with_ids or not f.primary_key]
    if with_ids:
        _assign_ids(model, objs)
    read = [_value_of(field) for field in fields]
    copy_rows(model, [f.attname for f in fields], ([r(obj) for r in read] for obj in objs))
    if with_ids:
        for obj in objs:
            obj._state.adding = False
            obj._state.db = db.alias


def copy_rows(model: type[models.Model], fields: Sequence[str], rows: Iterable[Sequence]) -> None:
    """Insert rows of values, as the model's `fields` (attnames) hold them, with binary COPY;
    each value is converted as its field would on a save (JSON wrapped, and so on)."""
    db = connections[connection.alias]
    meta = model._meta
    model_fields = [meta.get_field(name) for name in fields]
    columns = [field.column for field in model_fields]
    converters = [_to_db(field, db) for field in model_fields]
    if any(converters):
        rows = (
            [
                value if convert is None else convert(value)
                for value, convert in zip(row, converters, strict=True)
            ]
            for row in rows
        )
    types = _column_types(meta.db_table)
    table = db.ops.quote_name(meta.db_table)
    names = ", ".join(db.ops.quote_name(column) for column in columns)
    # The raw psycopg cursor: Django's wrapper has no COPY. Its errors are translated into
    # Django's (DatabaseError and kin) as the wrapper's would be.
    with db.cursor() as cursor, db.wrap_database_errors:
        with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types([types[column] for column in columns])
            for row in rows:
                copy.write_row(row)


def _assign_ids(model: type[models.Model], objs: Sequence[models.Model]) -> None:
    meta = model._meta
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [meta.db_table, meta.pk.column, len(objs)],
        )
        for obj, (pk,) in zip(objs, cursor.fetchall(), strict=True):
            obj.pk = pk


_TYPES: dict[str, dict[str, int]] = {}


def _column_types(table: str) -> dict[str, int]:
    """Column name -> type oid of a table (binary COPY must name each column's type); read once
    per process, as the schema changes only with a migration and a restart."""
    if table not in _TYPES:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT attname, atttypid::int FROM pg_attribute "
                "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
                [connection.ops.quote_name(table)],
            )
            _TYPES[table] = dict(cursor.fetchall())
    return _TYPES[table]
