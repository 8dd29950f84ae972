"""Tables that grow, partitioned by month: the one place that knows how.

Audit events, measurements, curves, the station inbox and its archive are range-partitioned on a
timestamp the server sets (never a station's clock), one partition per calendar month in UTC
(`<table>_pYYYYMM`), plus a DEFAULT partition (`<table>_default`) that takes a row of any other
time, so no insert ever fails for want of a partition.

The partitions are made by SQL functions installed here (core migration 0001): gunicorn and the
workers connect as a role that owns nothing and may create nothing (core/db_roles.py), so beat's
task calls them and they run as their owner (SECURITY DEFINER), doing only what they say: create
the partitions of a known table, and move processed inbox rows to the archive. The runtime role
gets EXECUTE on them and nothing else (core.db_roles.RUNTIME_FUNCTIONS).

A row of a month that arrived in DEFAULT before the month's partition was made is moved into it
when it is made: PostgreSQL refuses to create a partition whose rows DEFAULT already holds.

Every partition gets the autovacuum settings of its kind (storage parameters exist per leaf
partition only; a partitioned table has no storage of its own):

- append-only tables (the record, the archive): PostgreSQL vacuums a table for inserts alone once
  they reach a fifth of it, which in a month's partition of millions of rows comes late and
  rarely. Until then its pages are not marked all-visible, so the index-only scans of the
  (run, name) and (name, run) indexes read the heap anyway, and the pages are not frozen, leaving
  a whole month to freeze in one anti-wraparound vacuum later. Here a vacuum follows every
  100,000 inserts whatever the size, and statistics every 50,000 (a fresh month's partition would
  otherwise be planned as empty for days).
- the inbox, a queue: every row is written twice (stored, then processed), so it is vacuumed for
  its dead rows early (10,000 rows and a hundredth of the partition: migration batches 0007).
- a month that has ended gets autovacuum_freeze_min_age 0: it takes no more rows, so the next
  vacuum that visits it freezes all of it, once.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import connection, transaction

# Months of partitions kept ready beyond the current one.
MONTHS_AHEAD = 3

APPEND_ONLY = (
    "autovacuum_vacuum_insert_threshold = 100000, autovacuum_vacuum_insert_scale_factor = 0, "
    "autovacuum_analyze_threshold = 50000, autovacuum_analyze_scale_factor = 0"
)
QUEUE = (
    "autovacuum_vacuum_threshold = 10000, autovacuum_vacuum_scale_factor = 0.01, "
    "autovacuum_vacuum_insert_threshold = 100000, autovacuum_vacuum_insert_scale_factor = 0, "
    "autovacuum_analyze_threshold = 50000, autovacuum_analyze_scale_factor = 0"
)
CLOSED_MONTH = "autovacuum_freeze_min_age = 0"


@dataclass(frozen=True)
class Partitioned:
    table: str
    key: str  # the partition key: a timestamp column set by the server
    options: str  # the autovacuum settings of each of its partitions


TABLES = {
    spec.table: spec
    for spec in (
        Partitioned("audit_event", "occurred_at", APPEND_ONLY),
        Partitioned("batches_measurement", "recorded_at", APPEND_ONLY),
        Partitioned("batches_curve", "recorded_at", APPEND_ONLY),
        Partitioned("batches_inboxentry", "received_at", QUEUE),
        Partitioned("stations_inboxarchive", "received_at", APPEND_ONLY),
    )
}
INBOX, INBOX_ARCHIVE = "batches_inboxentry", "stations_inboxarchive"
# The functions the runtime role may call.
FUNCTIONS = ("mes_ensure_partitions(text, integer)", "mes_archive_inbox(interval, integer)")


def functions_sql(schema: str) -> str:
    """The maintenance functions, for a migration. Their search_path is the tables' schema with
    pg_temp last: a temporary table of the caller's cannot stand in for one of ours."""
    specs = ", ".join(f"('{s.table}', '{s.key}', '{s.options}')" for s in TABLES.values())
    path = connection.ops.quote_name(schema)
    return f"""
CREATE OR REPLACE FUNCTION mes_partition_spec(parent text, OUT key text, OUT options text)
LANGUAGE sql IMMUTABLE SET search_path = {path}, pg_temp AS $$
    SELECT v.key, v.options FROM (VALUES {specs}) AS v(parent, key, options)
    WHERE v.parent = mes_partition_spec.parent
$$;

-- The bounds of a month in UTC, whatever the session's time zone and date style.
CREATE OR REPLACE FUNCTION mes_month_bounds(month date, OUT lo timestamptz, OUT hi timestamptz)
LANGUAGE sql IMMUTABLE SET search_path = {path}, pg_temp AS $$
    SELECT (to_char(date_trunc('month', month), 'YYYY-MM-DD') || ' 00:00+00')::timestamptz,
           (to_char(date_trunc('month', month) + interval '1 month', 'YYYY-MM-DD')
            || ' 00:00+00')::timestamptz
$$;

CREATE OR REPLACE FUNCTION mes_ensure_default_partition(parent text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = {path}, pg_temp AS $$
DECLARE
    spec record;
    part text := parent || '_default';
BEGIN
    SELECT * INTO spec FROM mes_partition_spec(parent);
    IF spec.key IS NULL THEN
        RAISE EXCEPTION 'not a table partitioned by month: %', parent;
    END IF;
    IF to_regclass(part) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE format('CREATE TABLE %I PARTITION OF %I DEFAULT WITH (%s)', part, parent, spec.options);
    RETURN true;
END;
$$;

-- The partition of one month; false if it was there. A row of that month in DEFAULT moves in.
CREATE OR REPLACE FUNCTION mes_create_partition(parent text, month date) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = {path}, pg_temp AS $$
DECLARE
    spec record;
    bounds record;
    part text := parent || '_p' || to_char(month, 'YYYYMM');
    fallback text := parent || '_default';
    range text;
    moving boolean := false;
BEGIN
    SELECT * INTO spec FROM mes_partition_spec(parent);
    SELECT * INTO bounds FROM mes_month_bounds(month);
    IF spec.key IS NULL THEN
        RAISE EXCEPTION 'not a table partitioned by month: %', parent;
    END IF;
    IF to_regclass(part) IS NOT NULL THEN
        RETURN false;
    END IF;
    -- Two callers at once (beat and the command): the second waits, then finds it made.
    PERFORM pg_advisory_xact_lock(hashtext('mes_create_partition ' || parent));
    IF to_regclass(part) IS NOT NULL THEN
        RETURN false;
    END IF;
    range := format('%I >= %L AND %I < %L', spec.key, bounds.lo, spec.key, bounds.hi);
    IF to_regclass(fallback) IS NOT NULL THEN
        EXECUTE format('SELECT EXISTS (SELECT FROM %I WHERE %s)', fallback, range) INTO moving;
    END IF;
    IF moving THEN
        EXECUTE format('CREATE TEMP TABLE mes_moving ON COMMIT DROP AS SELECT * FROM %I WHERE %s',
                       fallback, range);
        -- The append-only triggers refuse the DELETE; off for this transaction's move only
        -- (ALTER TABLE holds its lock to the end, so no one else writes meanwhile).
        EXECUTE format('ALTER TABLE %I DISABLE TRIGGER USER', fallback);
        EXECUTE format('DELETE FROM %I WHERE %s', fallback, range);
        EXECUTE format('ALTER TABLE %I ENABLE TRIGGER USER', fallback);
    END IF;
    EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L) WITH (%s)',
                   part, parent, bounds.lo, bounds.hi, spec.options);
    IF moving THEN
        EXECUTE format('INSERT INTO %I SELECT * FROM pg_temp.mes_moving', parent);
        DROP TABLE pg_temp.mes_moving;
    END IF;
    RETURN true;
END;
$$;

-- The DEFAULT partition, this month's and months_ahead more; the months that have ended are
-- set to freeze at their next vacuum. Returns how many partitions it made.
CREATE OR REPLACE FUNCTION mes_ensure_partitions(parent text, months_ahead integer)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = {path}, pg_temp AS $$
DECLARE
    this_month date := date_trunc('month', now() AT TIME ZONE 'UTC')::date;
    created integer := 0;
    closed text;
BEGIN
    IF months_ahead NOT BETWEEN 0 AND 36 THEN
        RAISE EXCEPTION 'months ahead out of range: %', months_ahead;
    END IF;
    IF mes_ensure_default_partition(parent) THEN
        created := created + 1;
    END IF;
    FOR i IN 0..months_ahead LOOP
        IF mes_create_partition(parent, (this_month + make_interval(months => i))::date) THEN
            created := created + 1;
        END IF;
    END LOOP;
    FOR closed IN
        SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = parent::regclass AND c.relname ~ '_p[0-9]{{6}}$'
          AND right(c.relname, 6) < to_char(this_month, 'YYYYMM')
          AND NOT coalesce(c.reloptions, '{{}}') @> ARRAY['{CLOSED_MONTH.replace(" ", "")}']
    LOOP
        EXECUTE format('ALTER TABLE %I SET ({CLOSED_MONTH})', closed);
    END LOOP;
    RETURN created;
END;
$$;

-- Moves up to batch_size processed inbox rows received before now() - retention into the
-- archive (the idempotency keys stay in stations_inboxkey). Returns how many it moved.
CREATE OR REPLACE FUNCTION mes_archive_inbox(retention interval, batch_size integer)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = {path}, pg_temp AS $$
DECLARE
    cutoff timestamptz := now() - retention;
    month text;
    columns text;
    moved integer;
BEGIN
    IF retention < interval '1 day' THEN
        RAISE EXCEPTION 'inbox retention under a day: %', retention;
    END IF;
    PERFORM mes_ensure_default_partition('{INBOX_ARCHIVE}');
    -- The archive's partition of every month the inbox may move rows from.
    FOR month IN
        SELECT right(c.relname, 6) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = '{INBOX}'::regclass AND c.relname ~ '_p[0-9]{{6}}$'
    LOOP
        IF to_date(month, 'YYYYMM') < cutoff THEN
            PERFORM mes_create_partition('{INBOX_ARCHIVE}', to_date(month, 'YYYYMM'));
        END IF;
    END LOOP;
    -- By name: a column added to the inbox later must not shift the others.
    SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) INTO columns
    FROM pg_attribute
    WHERE attrelid = '{INBOX_ARCHIVE}'::regclass AND attnum > 0 AND NOT attisdropped;
    EXECUTE format(
        'WITH picked AS ('
        '    SELECT id, received_at FROM {INBOX}'
        '    WHERE status = %L AND received_at < $1 LIMIT $2'
        '), moved AS ('
        '    DELETE FROM {INBOX} e USING picked p'
        '    WHERE e.id = p.id AND e.received_at = p.received_at AND e.received_at < $1'
        '    AND e.status = %L RETURNING e.*'
        ') INSERT INTO {INBOX_ARCHIVE} (%s) SELECT %s FROM moved',
        'processed', 'processed', columns, columns)
        USING cutoff, batch_size;
    GET DIAGNOSTICS moved = ROW_COUNT;
    RETURN moved;
END;
$$;

REVOKE ALL ON FUNCTION mes_ensure_default_partition(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION mes_create_partition(text, date) FROM PUBLIC;
REVOKE ALL ON FUNCTION mes_ensure_partitions(text, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION mes_archive_inbox(interval, integer) FROM PUBLIC;
"""


DROP_FUNCTIONS_SQL = """
DROP FUNCTION mes_archive_inbox(interval, integer);
DROP FUNCTION mes_ensure_partitions(text, integer);
DROP FUNCTION mes_create_partition(text, date);
DROP FUNCTION mes_ensure_default_partition(text);
DROP FUNCTION mes_month_bounds(date);
DROP FUNCTION mes_partition_spec(text);
"""


# ---------------------------------------------------------------- maintenance (task, command)


def ensure_partitions(months_ahead: int = MONTHS_AHEAD) -> dict[str, int]:
    """Make the partitions of this month and `months_ahead` more of every partitioned table that
    exists; idempotent. Returns how many each got."""
    created = {}
    with transaction.atomic(), connection.cursor() as cursor:
        # Making a partition locks its table against every read and write: behind a long query
        # that would queue the whole intake. Given up instead; the next hour's run tries again,
        # months before the partition is needed.
        cursor.execute("SET LOCAL lock_timeout = '5s'")
        for table in TABLES:
            if _is_partitioned(cursor, table):
                cursor.execute("SELECT mes_ensure_partitions(%s, %s)", [table, months_ahead])
                created[table] = cursor.fetchone()[0]
    return created


def ensure_months(first: dt.date, last: dt.date, tables: list[str] | None = None) -> int:
    """Make the partitions of every month from `first` to `last` (dates, UTC months) of `tables`
    (all by default), before rows of those months are copied in (history, a restore): rows
    that found no partition would land in DEFAULT and be moved out row by row later. As the
    owner; returns how many were made."""
    made = 0
    months = range(first.year * 12 + first.month - 1, last.year * 12 + last.month)
    with transaction.atomic(), connection.cursor() as cursor:
        for table in tables or list(TABLES):
            cursor.execute("SELECT mes_ensure_default_partition(%s)", [table])
            for index in months:
                month = dt.date(index // 12, index % 12 + 1, 1)
                cursor.execute("SELECT mes_create_partition(%s, %s)", [table, month])
                made += cursor.fetchone()[0]
    return made


def archive_inbox(retention_days: int, batch_size: int = 10_000) -> int:
    """Move processed inbox rows older than `retention_days` to the archive, a batch per
    transaction (each holds its rows' locks only that long); returns how many moved."""
    total = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT mes_archive_inbox(make_interval(days => %s), %s)",
                [retention_days, batch_size],
            )
            moved = cursor.fetchone()[0]
        total += moved
        if moved < batch_size:
            return total


def recent_months(now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """From the start of last month to the end of next month (UTC): the partitions where a row
    received lately is, the bounds a lookup by id gives the planner to leave the others out."""
    now = now.astimezone(dt.UTC)
    months = now.year * 12 + now.month - 1

    def start(index: int) -> dt.datetime:
        return dt.datetime(index // 12, index % 12 + 1, 1, tzinfo=dt.UTC)

    return start(months - 1), start(months + 2)


def partitions(table: str) -> list[tuple[str, str]]:
    """The partitions of `table` and their bounds, as PostgreSQL states them."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = %s::regclass "
            "ORDER BY c.relname",
            [table],
        )
        return cursor.fetchall()


def closed_unfrozen_partitions() -> list[str]:
    """Partitions of months that have ended and were not vacuumed since (so not frozen by the
    CLOSED_MONTH setting either), oldest first."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_stat_all_tables s ON s.relid = c.oid "
            "WHERE i.inhparent = ANY(%s::regclass[]) AND c.relname ~ '_p[0-9]{6}$' "
            "AND (SELECT hi FROM mes_month_bounds(to_date(right(c.relname, 6), 'YYYYMM'))) "
            "    <= now() "
            "AND coalesce(greatest(s.last_vacuum, s.last_autovacuum), '-infinity') < "
            "    (SELECT hi FROM mes_month_bounds(to_date(right(c.relname, 6), 'YYYYMM'))) "
            "ORDER BY right(c.relname, 6), c.relname",
            [[t for t in TABLES if _is_partitioned(cursor, t)]],
        )
        return [name for (name,) in cursor.fetchall()]


def _is_partitioned(cursor, table: str) -> bool:
    cursor.execute("SELECT relkind = 'p' FROM pg_class WHERE oid = to_regclass(%s)", [table])
    row = cursor.fetchone()
    return bool(row and row[0])


# ---------------------------------------------------------------- migrations


def partition_table(schema_editor, table: str, *, drop_constraints: tuple[str, ...] = ()) -> None:
    """Turn the plain table `table` into one partitioned by month on its key (TABLES), with its
    rows, ids, defaults, constraints, indexes and triggers: a new partitioned table takes the
    name, the partitions of every month with rows (and MONTHS_AHEAD more) are made, the rows
    copied, the old table dropped. The primary key and each unique constraint get the key as a
    last column (PostgreSQL enforces uniqueness per partition only, so it must include it);
    `drop_constraints` are not carried over. A BRIN index on the key is added."""
    key = TABLES[table].key
    old = f"{table}__unpartitioned"
    with schema_editor.connection.cursor() as cursor:
        run = cursor.execute
        sequence, indexes, constraints, triggers = _set_aside(cursor, table, old)
        run(
            f"CREATE TABLE {_q(table)} (LIKE {_q(old)} INCLUDING DEFAULTS INCLUDING IDENTITY "
            f"INCLUDING STORAGE INCLUDING COMMENTS) PARTITION BY RANGE ({_q(key)})"
        )
        for name, definition in constraints:
            if name in drop_constraints:
                continue
            if definition.startswith(("PRIMARY KEY (", "UNIQUE (")):
                definition = definition.replace(")", f", {_q(key)})", 1)
            run(f"ALTER TABLE {_q(table)} ADD CONSTRAINT {_q(name)} {definition}")
        for _, definition in indexes:
            run(definition.replace(f" ON {_qualified(cursor, old)} ", f" ON {_q(table)} ", 1))
        run(f"CREATE INDEX {_q(table + '_' + key + '_brin')} ON {_q(table)} USING brin ({_q(key)})")
        for _, definition in triggers:
            run(definition.replace(f" ON {_qualified(cursor, old)} ", f" ON {_q(table)} ", 1))
        run("SELECT mes_ensure_default_partition(%s)", [table])
        # Every month with rows within ten years of now; a row of any other time goes to DEFAULT.
        run(
            f"SELECT DISTINCT date_trunc('month', {_q(key)} AT TIME ZONE 'UTC')::date "
            f"FROM {_q(old)} WHERE {_q(key)} BETWEEN now() - interval '10 years' "
            f"AND now() + interval '{MONTHS_AHEAD + 1} months'"
        )
        for (month,) in cursor.fetchall():
            run("SELECT mes_create_partition(%s, %s)", [table, month])
        run("SELECT mes_ensure_partitions(%s, %s)", [table, MONTHS_AHEAD])
        run(f"INSERT INTO {_q(table)} SELECT * FROM {_q(old)}")
        if sequence:
            _carry_sequence(cursor, f"{old}_id_seq", table)
        run(f"DROP TABLE {_q(old)}")
        run(f"ANALYZE {_q(table)}")


def unpartition_table(schema_editor, table: str, *, drop_constraints: tuple[str, ...] = ()) -> None:
    """The reverse of partition_table: a plain table again, with its rows, its primary key and
    unique constraints without the partition key, and no BRIN index."""
    key = TABLES[table].key
    old = f"{table}__partitioned"
    with schema_editor.connection.cursor() as cursor:
        run = cursor.execute
        sequence, indexes, constraints, triggers = _set_aside(cursor, table, old)
        run(
            f"CREATE TABLE {_q(table)} (LIKE {_q(old)} INCLUDING DEFAULTS INCLUDING IDENTITY "
            f"INCLUDING STORAGE INCLUDING COMMENTS)"
        )
        run(f"INSERT INTO {_q(table)} SELECT * FROM {_q(old)}")
        for name, definition in constraints:
            if name in drop_constraints:
                continue
            if definition.startswith(("PRIMARY KEY (", "UNIQUE (")):
                # As pg_get_constraintdef writes it: the key is a plain lower-case name.
                definition = definition.replace(f", {key})", ")", 1)
            run(f"ALTER TABLE {_q(table)} ADD CONSTRAINT {_q(name)} {definition}")
        for name, definition in indexes:
            if name != f"{table}_{key}_brin":
                definition = definition.replace(" ON ONLY ", " ON ", 1)
                run(definition.replace(f" ON {_qualified(cursor, old)} ", f" ON {_q(table)} ", 1))
        for _, definition in triggers:
            run(definition.replace(f" ON {_qualified(cursor, old)} ", f" ON {_q(table)} ", 1))
        if sequence:
            _carry_sequence(cursor, f"{old}_id_seq", table)
        run(f"DROP TABLE {_q(old)} CASCADE")
        run(f"ANALYZE {_q(table)}")


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


def _qualified(cursor, table: str) -> str:
    """The table's name as pg_get_indexdef and pg_get_triggerdef write it."""
    cursor.execute("SELECT %s::regclass::oid", [table])
    oid = cursor.fetchone()[0]
    cursor.execute(
        "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = %s",
        [oid],
    )
    return cursor.fetchone()[0]


def _identity_sequence(cursor, table: str) -> str | None:
    cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
    sequence = cursor.fetchone()[0]
    return sequence.rpartition(".")[2].strip('"') if sequence else None


def _carry_sequence(cursor, old_sequence: str, table: str) -> None:
    """The new identity sequence goes on from where the old one was: no id is handed out
    twice."""
    cursor.execute(f"SELECT last_value, is_called FROM {_q(old_sequence)}")
    last_value, is_called = cursor.fetchone()
    cursor.execute(
        "SELECT setval(pg_get_serial_sequence(%s, 'id'), %s, %s)", [table, last_value, is_called]
    )


def _definitions(cursor, table: str):
    """The table's own indexes (those not behind a constraint), its constraints but NOT NULL,
    and its triggers but the internal ones, each as (name, definition)."""
    cursor.execute(
        "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x "
        "JOIN pg_class i ON i.oid = x.indexrelid "
        "WHERE x.indrelid = %s::regclass "
        "AND NOT EXISTS (SELECT FROM pg_constraint c WHERE c.conindid = x.indexrelid "
        "AND c.conrelid = x.indrelid) ORDER BY i.relname",
        [table],
    )
    indexes = cursor.fetchall()
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype IN ('p', 'u', 'c', 'f', 'x') "
        "ORDER BY contype = 'p' DESC, conname",
        [table],
    )
    constraints = cursor.fetchall()
    cursor.execute(
        "SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger "
        "WHERE tgrelid = %s::regclass AND NOT tgisinternal ORDER BY tgname",
        [table],
    )
    triggers = cursor.fetchall()
    return indexes, constraints, triggers


def month_of(moment: dt.datetime) -> str:
    """The partition suffix of a moment: its month in UTC."""
    return moment.astimezone(dt.UTC).strftime("%Y%m")


def _set_aside(cursor, table: str, old: str) -> tuple:
    """Rename `table` (and its id sequence) to `old`, stripped of its constraints, indexes and
    triggers, whose definitions are returned for the table that takes its name."""
    sequence = _identity_sequence(cursor, table)
    indexes, constraints, triggers = _definitions(cursor, table)
    cursor.execute(f"ALTER TABLE {_q(table)} RENAME TO {_q(old)}")
    if sequence:
        cursor.execute(f"ALTER SEQUENCE {_q(sequence)} RENAME TO {_q(old + '_id_seq')}")
    for name, _ in constraints:
        cursor.execute(f"ALTER TABLE {_q(old)} DROP CONSTRAINT {_q(name)}")
    for name, _ in indexes:
        cursor.execute(f"DROP INDEX {_q(name)}")
    for name, _ in triggers:
        cursor.execute(f"DROP TRIGGER {_q(name)} ON {_q(old)}")
    return sequence, indexes, constraints, triggers
