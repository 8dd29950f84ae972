"""The two database roles: migrations run as the tables' owner; gunicorn, the Celery workers and
beat connect as a login role that owns nothing (mes/settings.py: DATABASE_ROLE=app).

`sync_runtime_role()` runs after every migrate (core.apps): it creates that role if it is missing
and gives each table exactly the privileges RUNTIME_PRIVILEGES declares, revoking anything else.
Owning nothing, the role cannot ALTER, DISABLE or DROP a trigger or change
session_replication_role: PostgreSQL itself refuses. Granted only SELECT and INSERT on the record
(audit events, runs, measurements, curves, consumptions, grades) and never TRUNCATE, it cannot
change or remove what happened either.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import dj_database_url
import psycopg
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, transaction
from psycopg import sql

from core import partitions

logger = logging.getLogger(__name__)

SELECT, INSERT, UPDATE, DELETE = "SELECT", "INSERT", "UPDATE", "DELETE"
# What the runtime role may do to what happened: read it and add to it.
RECORD = (SELECT, INSERT)

# Functions the runtime role may call, each running as its owner and doing only what it says:
# beat's partition maintenance (core/partitions.py), its folding of each lot's consumer counts
# (batches migration 0029) and of each batch's counts per step (0033), and a batch's yield
# figures, computed and stored by the database (quality migration 0006); each granted once its
# migration has made it.
RUNTIME_FUNCTIONS = (
    *partitions.FUNCTIONS,
    "batches_compact_lot_consumer_counts()",
    "batches_compact_batch_step_counts()",
    "quality_batch_yield(bigint[], text)",
)

# Table -> the privileges of the runtime role, from what the code run by gunicorn and the workers
# (services, intake, worker, sweep, admin, Django's auth and sessions) really does to it. Nothing
# gets TRUNCATE, REFERENCES or TRIGGER. A table missing here can only be read (and a test fails).
RUNTIME_PRIVILEGES: dict[str, tuple[str, ...]] = {
    # The record.
    "audit_event": RECORD,
    "batches_processrun": RECORD,
    "batches_measurement": RECORD,
    "batches_curve": RECORD,
    "batches_consumption": RECORD,
    "batches_cellgrade": RECORD,
    "batches_batchmaterial": RECORD,  # the lots planned for a batch, written with it
    "batches_gradecriterion": RECORD,  # written with their rule set, which versions them
    "lines_stationstatechange": RECORD,  # a station's state history
    # SPC's frozen limits and settings: a change is a new version, never an update.
    "quality_spcbaseline": RECORD,
    "quality_spcsetting": RECORD,
    # Line performance: reasons of past stops, ideal cycle times, equipment lockouts and
    # calibrations, each appended (the latest wins), never changed.
    "lines_stopreasoncorrection": RECORD,
    "lines_idealcycletime": RECORD,
    "lines_equipmentstatuschange": RECORD,
    "lines_equipmentcalibration": RECORD,
    # The inbox: the intake inserts, the workers and the sweep set status and enqueued_at,
    # requeueing sets status; rows are never deleted (they are the station's receipt).
    "batches_inboxentry": (SELECT, INSERT, UPDATE),
    # The inbox's idempotency key, written with each row, kept forever.
    "stations_inboxkey": RECORD,
    # The results summed per cell and step, by the database's trigger (batches migration 0021).
    "batches_cellstep": (SELECT,),
    # When each cell was last worked on, by the database's trigger (batches migration 0034).
    "batches_cellactivity": (SELECT,),
    # The batches each hold's cells belong to, by the database's trigger (batches migration 0035).
    "batches_holdbatch": (SELECT,),
    # Each lot's consumer counts, as changes summed when read, by the database's triggers, and
    # folded by its compaction function, which beat calls (batches migration 0029).
    "batches_lotconsumercount": (SELECT,),
    # Each batch's counts per step, the same way (batches migration 0033).
    "batches_batchstepcount": (SELECT,),
    # Each batch's yield figures, computed and stored by the database's function, forgotten by
    # its triggers (quality migration 0006).
    "quality_batchyield": (SELECT,),
    "quality_yieldepoch": (SELECT,),
    # Processed rows moved out of the inbox, by core.partitions' function (which runs as the
    # owner), never by the role itself.
    "stations_inboxarchive": (SELECT,),
    # What moves: created by their services, then updated by them only (statuses, next step,
    # grade, closing a hold, in_force of a retired hold-rule version, a station's state, a
    # token's revoked_at, releasing and superseding rule sets and recipe versions).
    "batches_batch": (SELECT, INSERT, UPDATE),
    "batches_cell": (SELECT, INSERT, UPDATE),
    "batches_hold": (SELECT, INSERT, UPDATE),
    "batches_hold_cells": RECORD,  # cells join a hold (lot, press cycle); none ever leaves it
    "batches_holdrule": (SELECT, INSERT, UPDATE),
    "batches_gradingruleset": (SELECT, INSERT, UPDATE),
    "lines_stationtoken": (SELECT, INSERT, UPDATE),
    # Non-conformance reports and their actions move through quality.nonconformance; a hold
    # leaves an NCR's containment by deleting its link row.
    "quality_nonconformance": (SELECT, INSERT, UPDATE),
    "quality_nonconformanceaction": (SELECT, INSERT, UPDATE),
    "quality_nonconformance_holds": (SELECT, INSERT, DELETE),
    # Experiment lots: the definition is written once and moves through its statuses; a cell's
    # override goes when its experiment is cancelled before the cell reached the step.
    "quality_experiment": (SELECT, INSERT, UPDATE),
    "quality_experiment_batches": RECORD,
    "quality_factor": RECORD,
    "quality_arm": RECORD,
    "quality_armassignment": RECORD,
    "quality_armrecipeversion": RECORD,
    "batches_cellrecipeoverride": (SELECT, INSERT, DELETE),
    # Master data, edited through the admin (and seed_demo).
    "lines_line": (SELECT, INSERT, UPDATE),
    "lines_station": (SELECT, INSERT, UPDATE),
    "lines_equipment": (SELECT, INSERT, UPDATE),
    "lines_shiftcalendar": (SELECT, INSERT, UPDATE),
    "lines_downtimereason": (SELECT, INSERT, UPDATE),
    "lines_route": (SELECT, INSERT, UPDATE),
    "lines_recipe": (SELECT, INSERT, UPDATE),
    "batches_celldesign": (SELECT, INSERT, UPDATE),
    "batches_materiallot": (SELECT, INSERT, UPDATE),
    # Passport master data: versions are inserted, then only superseded (a trigger refuses any
    # other change); a batch's passport export is requested, then finished by a worker.
    "analytics_passportmasterdata": (SELECT, INSERT, UPDATE),
    "analytics_passportexport": (SELECT, INSERT, UPDATE),
    # Figures computed from the record, not the record: written by the page that computes them,
    # deleted by the triggers of whatever changes their inputs (analytics migration 0003).
    "analytics_batchfigures": (SELECT, INSERT, DELETE),
    "analytics_figuresepoch": (SELECT, INSERT, UPDATE),
    # The admin's inlines delete rows of these: a route's steps and a design's bill of materials
    # (a step a run or a cell names is protected by its foreign key; a consumption keeps its own
    # quantity), and a draft recipe version with its parameters (the frozen-recipe triggers
    # refuse it for any other).
    "lines_routestep": (SELECT, INSERT, UPDATE, DELETE),
    "batches_designmaterial": (SELECT, INSERT, UPDATE, DELETE),
    "lines_recipeversion": (SELECT, INSERT, UPDATE, DELETE),
    "lines_recipeparameter": (SELECT, INSERT, UPDATE, DELETE),
    # Dry rooms: readings are the record; an excursion is judged again when a late reading
    # changes it, and one that held nothing is deleted when a late reading dissolves it.
    "environment_reading": RECORD,
    "environment_excursionhold": RECORD,
    "lines_zone": (SELECT, INSERT, UPDATE),
    "lines_zone_stations": (SELECT, INSERT, DELETE),  # the admin edits a zone's stations
    "lines_excursion": (SELECT, INSERT, UPDATE, DELETE),
    # A calendar's shifts and breaks and a line's days off, edited in the admin's inlines.
    "lines_shift": (SELECT, INSERT, UPDATE, DELETE),
    "lines_shiftbreak": (SELECT, INSERT, UPDATE, DELETE),
    "lines_dayoff": (SELECT, INSERT, UPDATE, DELETE),
    # Django's own. Users are deactivated, never deleted: audit events name them.
    "auth_user": (SELECT, INSERT, UPDATE),
    "auth_user_groups": (SELECT, INSERT, DELETE),
    "auth_user_user_permissions": (SELECT, INSERT, DELETE),
    "auth_group": (SELECT, INSERT, UPDATE, DELETE),
    "auth_group_permissions": (SELECT, INSERT, DELETE),
    "auth_permission": (SELECT,),  # created by migrate
    "django_content_type": (SELECT,),  # created by migrate
    "django_migrations": (SELECT,),
    "django_admin_log": RECORD,
    "django_session": (SELECT, INSERT, UPDATE, DELETE),  # sign-out and expiry delete sessions
    # An engineer's personal API token (accounts/): revoking or expiring deletes it.
    "knox_authtoken": (SELECT, INSERT, DELETE),
    # django-axes counts failed sign-ins per address, deletes the count on a success or once it
    # has expired (with its expiry row), and logs each sign-in and its sign-out time.
    "axes_accessattempt": (SELECT, INSERT, UPDATE, DELETE),
    "axes_accessattemptexpiration": (SELECT, INSERT, UPDATE, DELETE),
    "axes_accessfailurelog": (SELECT, INSERT, DELETE),  # trimmed to a limit per user
    "axes_accesslog": (SELECT, INSERT, UPDATE),
}

_ROLE_EXISTS = (psycopg.errors.DuplicateObject, psycopg.errors.UniqueViolation)
TABLE_PRIVILEGES = (SELECT, INSERT, UPDATE, DELETE, "TRUNCATE", "REFERENCES", "TRIGGER")
# The role's attributes in pg_roles, as CREATE/ALTER ROLE spell them.
ROLE_ATTRIBUTES = {
    "rolcanlogin": "LOGIN",
    "rolsuper": "NOSUPERUSER",
    "rolinherit": "NOINHERIT",
    "rolcreatedb": "NOCREATEDB",
    "rolcreaterole": "NOCREATEROLE",
    "rolreplication": "NOREPLICATION",
    "rolbypassrls": "NOBYPASSRLS",
}


def url_as_role(url: str, user: str, password: str = "") -> str:
    """The database URL `url` with its user (and password) replaced: the same server and database,
    host given as ?host= (a Unix socket directory) included."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    auth = quote(user, safe="") + (f":{quote(password, safe='')}" if password else "")
    return urlunsplit(parts._replace(netloc=f"{auth}@{host}"))


def runtime_role() -> tuple[str, str]:
    """The runtime role's name and password ("" for none), from settings.DATABASE_APP_URL."""
    runtime = dj_database_url.parse(settings.DATABASE_APP_URL)
    return runtime["USER"], runtime.get("PASSWORD") or ""


def sync_runtime_role(using: str = DEFAULT_DB_ALIAS, **_signal_kwargs: Any) -> None:
    """Create the runtime role if missing and set its privileges on every table of the schema to
    RUNTIME_PRIVILEGES; then read them back and fail loudly if PostgreSQL did not do as asked
    (a migrating user that does not own the tables gets warnings, not errors, from GRANT).

    Idempotent; runs after every migrate. In one transaction, so a running app never sees its
    privileges revoked and not yet granted again.
    """
    role, password = runtime_role()
    connection = connections[using]
    with transaction.atomic(using=using), connection.cursor() as cursor:
        raw = connection.connection
        name = sql.Identifier(role).as_string(raw)
        cursor.execute("SELECT current_user, current_schema()")
        owner, schema = cursor.fetchone()
        if owner == role:
            raise ImproperlyConfigured(
                f"migrate is connected as the runtime role {role}: run it as the tables' owner "
                "(DATABASE_URL, without DATABASE_ROLE=app)."
            )
        _ensure_role(cursor, role, name, using)
        if password:
            # Sent as the server's hash (SCRAM), so the password never appears in its logs.
            verifier = raw.pgconn.encrypt_password(password.encode(), role.encode(), None)
            cursor.execute(f"ALTER ROLE {name} PASSWORD %s", [verifier.decode()])
        _check_role_owns_nothing(cursor, role, schema)
        schema_name = sql.Identifier(schema).as_string(raw)
        cursor.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA {schema_name} FROM {name}")
        cursor.execute(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {schema_name} FROM {name}")
        wanted = _wanted_privileges(_tables(cursor))
        for privileges in sorted(set(wanted.values())):
            tables = ", ".join(
                sql.Identifier(schema, table).as_string(raw)
                for table, granted in sorted(wanted.items())
                if granted == privileges
            )
            cursor.execute(f"GRANT {', '.join(privileges)} ON {tables} TO {name}")
        # nextval for the tables' ids (identity columns and core.bulk's _assign_ids).
        cursor.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema_name} TO {name}")
        for function in RUNTIME_FUNCTIONS:
            cursor.execute("SELECT to_regprocedure(%s) IS NOT NULL", [function])
            if cursor.fetchone()[0]:  # not made yet while migrating from the start
                cursor.execute(f"GRANT EXECUTE ON FUNCTION {function} TO {name}")
        _check_privileges(cursor, role, schema, wanted)


def _ensure_role(cursor, role: str, name: str, using: str) -> None:
    attributes = _role_attributes(cursor, role)
    if attributes is None:
        try:
            # In a savepoint: migrate on another database of the same server (a parallel test
            # run) may create the role at the same moment; roles belong to the whole server.
            with transaction.atomic(using=using):
                cursor.execute(f"CREATE ROLE {name} {' '.join(ROLE_ATTRIBUTES.values())}")
        except DatabaseError as error:
            if not isinstance(error.__cause__, _ROLE_EXISTS):
                raise
        attributes = _role_attributes(cursor, role)
    differing = [
        spelling
        for column, spelling in ROLE_ATTRIBUTES.items()
        if attributes[column] != (spelling == "LOGIN")
    ]
    if differing:
        cursor.execute(f"ALTER ROLE {name} {' '.join(differing)}")


def _role_attributes(cursor, role: str) -> dict[str, bool] | None:
    cursor.execute(f"SELECT {', '.join(ROLE_ATTRIBUTES)} FROM pg_roles WHERE rolname = %s", [role])
    row = cursor.fetchone()
    return None if row is None else dict(zip(ROLE_ATTRIBUTES, row, strict=True))


def _check_role_owns_nothing(cursor, role: str, schema: str) -> None:
    """The role must own nothing here (an owner may alter, disable or drop triggers), be able to
    create nothing that it would then own, and belong to no role (NOINHERIT or not, a member may
    SET ROLE to it)."""
    cursor.execute(
        "SELECT count(*) FROM pg_shdepend WHERE refclassid = 'pg_authid'::regclass "
        "AND refobjid = (SELECT oid FROM pg_roles WHERE rolname = %s) AND deptype = 'o' "
        "AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
        [role],
    )
    (owned,) = cursor.fetchone()
    cursor.execute(
        "SELECT array_agg(roleid::regrole::text) FROM pg_auth_members "
        "WHERE member = (SELECT oid FROM pg_roles WHERE rolname = %s)",
        [role],
    )
    (member_of,) = cursor.fetchone()
    if owned or member_of:
        raise ImproperlyConfigured(
            f"The runtime role {role} must own nothing and belong to no role; it owns {owned} "
            f"objects in this database and belongs to {member_of or 'no role'}."
        )
    cursor.execute("SELECT has_schema_privilege(%s, %s, 'CREATE')", [role, schema])
    if cursor.fetchone()[0]:
        raise ImproperlyConfigured(
            f"The runtime role {role} may create tables in schema {schema} (before PostgreSQL "
            f"15 everyone may): REVOKE CREATE ON SCHEMA {schema} FROM PUBLIC, as its owner."
        )


def _tables(cursor) -> list[str]:
    """The tables of the current schema (partitions are reached through their parent)."""
    cursor.execute(
        "SELECT relname FROM pg_class "
        "WHERE relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema()) "
        "AND relkind IN ('r', 'p') AND NOT relispartition ORDER BY relname"
    )
    return [table for (table,) in cursor.fetchall()]


def _wanted_privileges(tables: list[str]) -> dict[str, tuple[str, ...]]:
    undeclared = [table for table in tables if table not in RUNTIME_PRIVILEGES]
    if undeclared:
        logger.warning(
            "No runtime privileges declared for %s in core/db_roles.py: the app may only read "
            "them.",
            ", ".join(undeclared),
        )
    return {table: RUNTIME_PRIVILEGES.get(table, (SELECT,)) for table in tables}


def _check_privileges(cursor, role: str, schema: str, wanted: dict[str, tuple[str, ...]]) -> None:
    """What the role may do to each table, as PostgreSQL answers (PUBLIC's grants included),
    against what was wanted."""
    cursor.execute(
        "SELECT c.relname, array_agg(p.privilege ORDER BY p.privilege) "
        "FROM pg_class c CROSS JOIN unnest(%s::text[]) AS p(privilege) "
        "WHERE c.relname = ANY(%s) "
        "AND c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = %s) "
        "AND has_table_privilege(%s, c.oid, p.privilege) GROUP BY c.relname",
        [list(TABLE_PRIVILEGES), list(wanted), schema, role],
    )
    actual = dict(cursor.fetchall())
    wrong = {
        table: sorted(actual.get(table, []))
        for table, privileges in wanted.items()
        if sorted(actual.get(table, [])) != sorted(privileges)
    }
    if wrong:
        raise ImproperlyConfigured(
            f"The runtime role {role} did not get the privileges declared in core/db_roles.py "
            f"(does the migrating user own the tables?); it has {wrong}."
        )
