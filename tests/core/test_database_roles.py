"""The role gunicorn and the workers connect as (core/db_roles.py): created by migrate, it may read
the record and add to it, but neither change nor remove it, nor switch off what guards it; the
services still do all they do as that role."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import msgspec
import psycopg
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import ProgrammingError, connection, transaction
from django.utils import timezone
from psycopg import sql

from audit.models import Event
from batches.models import (
    BatchStepCount,
    Cell,
    CellActivity,
    CellStep,
    Hold,
    HoldBatch,
    LotConsumerCount,
    MaterialLot,
    Measurement,
    ProcessRun,
)
from batches.services import compact_lot_consumer_counts, hold_cell, release_hold, scrap_cell
from core.db_roles import RUNTIME_PRIVILEGES, runtime_role, sync_runtime_role, url_as_role
from demo.demo_data import nominal_stacking_readings
from stations import intake, worker
from stations.models import InboxEntry
from stations.schema import StationResultIn
from tests import processes

pytestmark = pytest.mark.django_db

RECORD = {"SELECT", "INSERT"}
EVERY_TABLE_PRIVILEGE = (
    "SELECT",
    "INSERT",
    "UPDATE",
    "DELETE",
    "TRUNCATE",
    "REFERENCES",
    "TRIGGER",
)


@pytest.fixture
def role() -> str:
    return runtime_role()[0]


def _rows(query: str, params: list | None = None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchall()


def _privileges(role: str) -> dict[str, set[str]]:
    """Table -> what `role` may do to it, as PostgreSQL answers."""
    rows = _rows(
        "SELECT c.relname, p.privilege FROM pg_class c "
        "CROSS JOIN unnest(%s::text[]) AS p(privilege) "
        "WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') "
        "AND has_table_privilege(%s, c.oid, p.privilege)",
        [list(EVERY_TABLE_PRIVILEGE), role],
    )
    privileges: dict[str, set[str]] = {}
    for table, privilege in rows:
        privileges.setdefault(table, set()).add(privilege)
    return privileges


def _tables() -> set[str]:
    rows = _rows(
        "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace "
        "AND relkind IN ('r', 'p') AND NOT relispartition"
    )
    return {table for (table,) in rows}


@contextmanager
def as_runtime_role(role: str) -> Iterator[None]:
    """Django's connection acts as the runtime role until the block ends (SET LOCAL ROLE: the
    test's transaction, rolled back after it, bounds it)."""
    with connection.cursor() as cursor:
        cursor.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)).as_string())
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET ROLE")


def refused(action: Callable[[], object]) -> Exception:
    """Run `action` in a savepoint; return the psycopg error PostgreSQL refused it with."""
    with pytest.raises(ProgrammingError) as caught, transaction.atomic():
        action()
    return caught.value.__cause__


@pytest.fixture
def app_db(role) -> Iterator[psycopg.Connection]:
    """A connection of its own to the test database, logged in as the runtime role."""
    with psycopg.connect(processes.test_database_app_url(), autocommit=True) as conn:
        # A refusal comes before any lock is taken; should one ever wait, fail instead of hang.
        conn.execute("SET lock_timeout = '5s'")
        yield conn


# ---------------------------------------------------------------- what migrate leaves


def test_migrate_leaves_a_login_role_that_owns_nothing_and_inherits_nothing(role):
    ((attributes),) = _rows(
        "SELECT rolcanlogin, rolsuper, rolinherit, rolcreatedb, rolcreaterole, rolreplication, "
        "rolbypassrls FROM pg_roles WHERE rolname = %s",
        [role],
    )
    assert attributes == (True, False, False, False, False, False, False)
    assert (
        _rows(
            "SELECT roleid FROM pg_auth_members WHERE member = (SELECT oid FROM pg_roles "
            "WHERE rolname = %s)",
            [role],
        )
        == []
    )
    assert (
        _rows(
            "SELECT relname FROM pg_class WHERE relowner = (SELECT oid FROM pg_roles "
            "WHERE rolname = %s)",
            [role],
        )
        == []
    )


def test_the_record_can_be_read_and_added_to_and_nothing_more(role):
    privileges = _privileges(role)
    for table in (
        "audit_event",
        "batches_processrun",
        "batches_measurement",
        "batches_curve",
        "batches_consumption",
        "batches_cellgrade",
        "batches_hold_cells",
    ):
        assert privileges[table] == RECORD, table
    assert privileges["batches_inboxentry"] == {"SELECT", "INSERT", "UPDATE"}
    for table in ("batches_cell", "batches_batch", "batches_hold", "batches_holdrule"):
        assert privileges[table] == {"SELECT", "INSERT", "UPDATE"}, table
    assert privileges["lines_recipeparameter"] == {"SELECT", "INSERT", "UPDATE", "DELETE"}
    assert privileges["django_session"] == {"SELECT", "INSERT", "UPDATE", "DELETE"}
    assert privileges["knox_authtoken"] == {"SELECT", "INSERT", "DELETE"}
    assert privileges["axes_accesslog"] == {"SELECT", "INSERT", "UPDATE"}
    assert privileges["django_content_type"] == {"SELECT"}
    assert not any(p & {"TRUNCATE", "REFERENCES", "TRIGGER"} for p in privileges.values())


def test_every_table_has_its_runtime_privileges_declared(role):
    """A new table gets a line in core/db_roles.py saying what the app may do to it."""
    assert _tables() == set(RUNTIME_PRIVILEGES)
    privileges = _privileges(role)
    assert {t: privileges.get(t, set()) for t in RUNTIME_PRIVILEGES} == {
        t: set(p) for t, p in RUNTIME_PRIVILEGES.items()
    }


def test_ids_can_be_drawn_but_sequences_not_reset(role):
    (counts,) = _rows(
        "SELECT count(*), count(*) FILTER (WHERE has_sequence_privilege(%s, c.oid, 'USAGE')), "
        "count(*) FILTER (WHERE has_sequence_privilege(%s, c.oid, 'UPDATE')) "
        "FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'S'",
        [role, role],
    )
    sequences, usable, resettable = counts
    assert sequences > 20
    assert (usable, resettable) == (sequences, 0)


def test_migrate_puts_back_what_was_changed_by_hand(role):
    name = sql.Identifier(role).as_string()
    with connection.cursor() as cursor:
        cursor.execute(f"GRANT DELETE, TRUNCATE ON batches_processrun TO {name}")
        cursor.execute(f"ALTER ROLE {name} CREATEDB")
    sync_runtime_role()
    assert _privileges(role)["batches_processrun"] == RECORD
    assert _rows("SELECT rolcreatedb FROM pg_roles WHERE rolname = %s", [role]) == [(False,)]


def test_migrate_sets_the_password_of_the_runtime_url_as_a_hash(role, settings):
    settings.DATABASE_APP_URL = f"postgresql://{role}:s3cret%2Fpw@127.0.0.1:5432/mes"
    sync_runtime_role()
    ((stored,),) = _rows("SELECT rolpassword FROM pg_authid WHERE rolname = %s", [role])
    assert stored.startswith("SCRAM-SHA-256$")
    assert "s3cret" not in stored


def test_migrate_refuses_to_run_as_the_runtime_role(role):
    with as_runtime_role(role), pytest.raises(ImproperlyConfigured, match="tables' owner"):
        sync_runtime_role()


def test_the_runtime_url_is_the_owners_with_the_user_replaced():
    assert (
        url_as_role("postgresql://postgres:@/postgres?host=/srv/.data/run", "mes_app")
        == "postgresql://mes_app@/postgres?host=/srv/.data/run"
    )
    assert (
        url_as_role("postgresql://mes:mes@postgres:5432/mes", "mes_app", "p@ss/w:rd")
        == "postgresql://mes_app:p%40ss%2Fw%3Ard@postgres:5432/mes"
    )


# ---------------------------------------------------------------- refused


@pytest.mark.parametrize(
    "statement",
    [
        "TRUNCATE audit_event",
        "TRUNCATE batches_measurement",
        "TRUNCATE batches_processrun CASCADE",
        "ALTER TABLE audit_event DISABLE TRIGGER audit_event_append_only",
        "ALTER TABLE audit_event DISABLE TRIGGER ALL",
        "DROP TRIGGER audit_event_append_only ON audit_event",
        "DROP TABLE audit_event",
        "SET session_replication_role = replica",
        "CREATE TABLE audit_event_shadow (id int)",
        "DELETE FROM audit_event",
        "UPDATE batches_measurement SET value = 0",
        "DELETE FROM batches_inboxentry",
        "DELETE FROM batches_lotconsumercount",
        "INSERT INTO batches_lotconsumercount (lot_id, consumptions, cells, in_process, completed,"
        " scrapped) SELECT id, 1, 1, 1, 0, 0 FROM batches_materiallot LIMIT 1",
        "ALTER TABLE batches_consumption DISABLE TRIGGER batches_count_added_consumers",
        # What the database notes of the results and the holds' cells, the role only reads.
        "UPDATE batches_cellactivity SET last_run_at = now()",
        "INSERT INTO batches_holdbatch (hold_id, batch_id) SELECT id, batch_id FROM batches_hold"
        " WHERE batch_id IS NOT NULL LIMIT 1",
        "ALTER TABLE batches_processrun DISABLE TRIGGER batches_note_cell_activity",
    ],
)
def test_logged_in_as_the_runtime_role_nothing_guarding_the_record_can_be_undone(app_db, statement):
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        app_db.execute(statement)


def test_the_login_connection_is_the_runtime_role(app_db, role):
    assert app_db.execute("SELECT current_user, session_user").fetchone() == (role, role)


@pytest.fixture
def stacked(proto_batch, stations, record) -> ProcessRun:
    """A cell of the prototype batch stacked, recorded as the owner."""
    cell = proto_batch.cells.order_by("position").first()
    return record(cell, stations["PR-STK-1"])


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda run: ProcessRun.objects.filter(pk=run.pk).update(verdict="fail"), id="verdict"),
        pytest.param(lambda run: ProcessRun.objects.filter(pk=run.pk).delete(), id="delete run"),
        pytest.param(lambda run: Measurement.objects.filter(run=run).update(value=0.0, in_spec=True), id="measurement"),
        pytest.param(lambda run: Measurement.objects.filter(run=run).delete(), id="delete measurements"),
        pytest.param(lambda run: Event.objects.filter(subject=run.cell.serial).delete(), id="delete events"),
        pytest.param(lambda run: InboxEntry.objects.all().delete(), id="delete inbox rows"),
        pytest.param(lambda run: CellStep.objects.filter(cell=run.cell).update(first_passed=False), id="change a cell's step summary"),
        pytest.param(lambda run: LotConsumerCount.objects.update(cells=0), id="change a lot's consumer counts"),
        pytest.param(lambda run: LotConsumerCount.objects.all().delete(), id="delete a lot's consumer counts"),
        pytest.param(lambda run: LotConsumerCount.objects.create(lot=MaterialLot.objects.first(), consumptions=1, cells=1, in_process=1, completed=0, scrapped=0), id="add to a lot's consumer counts"),
        pytest.param(lambda run: BatchStepCount.objects.update(passed=0), id="change a batch's step counts"),
        pytest.param(lambda run: BatchStepCount.objects.all().delete(), id="delete a batch's step counts"),
        pytest.param(lambda run: BatchStepCount.objects.create(batch=run.cell.batch, step="stacking", passed=1, failed=0), id="add to a batch's step counts"),
    ],
)  # fmt: skip
def test_the_runtime_role_cannot_change_or_delete_a_run_its_measurements_or_events(
    stacked, role, change
):
    before = (
        list(ProcessRun.objects.filter(pk=stacked.pk).values_list("verdict", flat=True)),
        sorted(Measurement.objects.filter(run=stacked).values_list("name", "value", "in_spec")),
        Event.objects.filter(subject=stacked.cell.serial).count(),
    )
    with as_runtime_role(role):
        error = refused(lambda: change(stacked))
    assert isinstance(error, psycopg.errors.InsufficientPrivilege)
    after = (
        list(ProcessRun.objects.filter(pk=stacked.pk).values_list("verdict", flat=True)),
        sorted(Measurement.objects.filter(run=stacked).values_list("name", "value", "in_spec")),
        Event.objects.filter(subject=stacked.cell.serial).count(),
    )
    assert after == before
    assert before[0] == ["pass"] and before[1] and before[2]


# ---------------------------------------------------------------- allowed


def _result(event_id: str, serial: str, measurements: dict) -> StationResultIn:
    return msgspec.convert(
        {
            "event_id": event_id,
            "cell": serial,
            "occurred_at": timezone.now().isoformat(),
            "measurements": measurements,
        },
        StationResultIn,
    )


def test_station_results_are_applied_end_to_end_as_the_runtime_role(proto_batch, stations, role):
    """The intake stores them, the worker judges and writes runs, measurements and events, moves
    the cells and, for the failed one, the out-of-spec rule opens a hold."""
    good, bad = proto_batch.cells.order_by("position")[:2]
    readings = nominal_stacking_readings(proto_batch.design)
    with as_runtime_role(role):
        assert _rows("SELECT current_user") == [(role,)]
        accepted = intake.accept_results(
            stations["PR-STK-1"],
            [
                _result("stk-good", good.serial, readings),
                _result("stk-bad", bad.serial, {**readings, "layer_count": 999.0}),
            ],
        )
        counts = worker.process_entries(accepted.entry_ids)
    assert counts["applied"] == 2 and counts["retry"] == 0
    assert dict(InboxEntry.objects.values_list("event_id", "status")) == {
        "stk-good": "processed",
        "stk-bad": "processed",
    }
    runs = dict(ProcessRun.objects.values_list("event_id", "verdict"))
    assert runs == {"stk-good": "pass", "stk-bad": "fail"}
    assert Measurement.objects.filter(run__event_id="stk-good").count() == len(readings)
    good.refresh_from_db()
    assert good.status == Cell.Status.IN_PROCESS and good.next_step.station_kind == "pressing"
    hold = Hold.objects.get(scope=Hold.Scope.CELL, target=bad.serial)
    assert hold.status == Hold.Status.OPEN and list(hold.cells.all()) == [bad]
    assert Event.objects.filter(verb="step_recorded").count() == 2
    # The database's triggers noted, as their owner, what the role itself may only read.
    noted = dict(CellActivity.objects.values_list("cell_id", "last_failed_at"))
    assert set(noted) == {good.pk, bad.pk} and noted[good.pk] is None
    assert noted[bad.pk] == ProcessRun.objects.get(event_id="stk-bad").finished_at
    assert list(HoldBatch.objects.values_list("hold_id", "batch_id")) == [(hold.pk, proto_batch.pk)]


def test_engineers_hold_release_and_scrap_cells_as_the_runtime_role(
    proto_batch, quality_engineer, role
):
    first, second = proto_batch.cells.order_by("position")[:2]
    with as_runtime_role(role):
        hold = hold_cell(first, by=quality_engineer, reason="Tab weld looks off")
        release_hold(hold, by=quality_engineer, disposition="release", reason="Weld checked")
        scrap_cell(second, by=quality_engineer, reason="Dropped on the floor")
    hold.refresh_from_db()
    second.refresh_from_db()
    assert hold.status == Hold.Status.CLOSED and hold.disposition == "release"
    assert second.status == Cell.Status.SCRAPPED
    assert set(Event.objects.values_list("verb", flat=True)) >= {
        "hold_opened",
        "hold_closed",
        "cell_scrapped",
    }


def test_consumer_counts_follow_results_and_scrapping_and_are_folded_as_the_runtime_role(
    proto_batch, stations, quality_engineer, role
):
    """The database's triggers and its compaction function write the counts the role may only
    read."""
    first, second = proto_batch.cells.order_by("position")[:2]
    readings = nominal_stacking_readings(proto_batch.design)
    lots = {"cathode": "CAT-2611-A-01", "electrolyte": "SE-2611-01"}
    with as_runtime_role(role):
        accepted = intake.accept_results(
            stations["PR-STK-1"],
            [
                msgspec.structs.replace(
                    _result(f"stk-{cell.pk}", cell.serial, readings), material_lots=lots
                )
                for cell in (first, second)
            ],
        )
        assert worker.process_entries(accepted.entry_ids)["applied"] == 2
        scrap_cell(second, by=quality_engineer, reason="Dropped on the floor")
        assert compact_lot_consumer_counts() > 0
    roll = LotConsumerCount.objects.get(lot__code="CAT-ROLL-2611-A")
    assert (roll.consumptions, roll.cells, roll.in_process, roll.scrapped) == (0, 2, 1, 1)
    sheet = LotConsumerCount.objects.get(lot__code="CAT-2611-A-01")
    assert (sheet.consumptions, sheet.cells) == (2, 2)


@pytest.mark.parametrize(
    "function", ["batches_compact_lot_consumer_counts()", "batches_compact_batch_step_counts()"]
)
def test_the_runtime_role_may_fold_the_counts_and_no_one_else(app_db, role, function):
    assert app_db.execute(f"SELECT {function}").fetchone() == (0,)
    public = _rows(f"SELECT has_function_privilege('public', '{function}', 'EXECUTE')")
    assert public == [(False,)]


@pytest.mark.processes
def test_processes_for_the_fault_tests_connect_as_the_runtime_role(tmp_path, role):
    """gunicorn and the Celery workers of tests/processes.py get this environment."""
    stack = processes.Stack("redis://127.0.0.1:6379/15", tmp_path)
    probe = (
        "import django; django.setup(); from django.db import connection; "
        "cursor = connection.cursor(); cursor.execute('SELECT current_user, current_database()'); "
        "print(*cursor.fetchone())"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=processes.ROOT,
        env={**stack.env, "DJANGO_SETTINGS_MODULE": "mes.settings"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [role, connection.settings_dict["NAME"]]
