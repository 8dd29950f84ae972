"""Writing many rows in few statements, where Django's bulk methods cost more than the writes.

Station results arrive by the thousand: each brings a run, several measurements and an audit
event, and an inbox row and a cell to update. These helpers write them with binary COPY and
UPDATE ... FROM unnest, converting each value as the field would on a save.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.db import connection, connections, models


def update_rows(objs: Sequence[models.Model], fields: Sequence[str]) -> None:
    """Write `fields` of `objs` (one model) as one UPDATE ... FROM unnest(...).

    Django's bulk_update builds a CASE WHEN per field and row: for a chunk of a few hundred inbox
    rows it spends about a second of Python compiling it. Here the values travel as one array per
    column.
    """
    if not objs:
        return
    db = connections[connection.alias]  # the wrapper itself, not the per-thread proxy
    meta = type(objs[0])._meta
    columns = [meta.pk, *(meta.get_field(name) for name in fields)]
    params = [
        [field.get_db_prep_save(getattr(obj, field.attname), db) for obj in objs]
        for field in columns
    ]
    names = [db.ops.quote_name(field.column) for field in columns]
    arrays = ", ".join(f"%s::{field.db_type(db)}[]" for field in columns)
    assignments = ", ".join(f"{name} = v.{name}" for name in names[1:])
    table = db.ops.quote_name(meta.db_table)
    with db.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {assignments} FROM unnest({arrays}) AS v({', '.join(names)}) "
            f"WHERE {table}.{names[0]} = v.{names[0]}",
            params,
        )


def copy_objects(objs: Sequence[models.Model], *, with_ids: bool = False) -> None:
    """Insert unsaved instances of one model with binary COPY.

    Values are prepared by each field as a save would (auto_now_add included). With `with_ids`,
    the instances first get their primary keys from the table's sequence, so rows pointing at
    them can be written next; otherwise they are left without. No signals are sent (as with
    bulk_create).
    """
    if not objs:
        return
    db = connections[connection.alias]
    model = type(objs[0])
    fields = [f for f in model._meta.concrete_fields if with_ids or not f.primary_key]
    if with_ids:
        _assign_ids(model, objs)
    copy_rows(
        model,
        [f.attname for f in fields],
        (
            [field.get_db_prep_save(field.pre_save(obj, add=True), db) for field in fields]
            for obj in objs
        ),
    )
    if with_ids:
        for obj in objs:
            obj._state.adding = False
            obj._state.db = db.alias


def copy_rows(model: type[models.Model], fields: Sequence[str], rows: Iterable[Sequence]) -> None:
    """Insert rows of values as the database takes them (numbers, strings, booleans, None,
    datetimes, lists; JSON wrapped by the field) into `fields` (attnames) with binary COPY."""
    db = connections[connection.alias]
    meta = model._meta
    columns = [meta.get_field(name).column for name in fields]
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
