"""The tables that grow, partitioned by month (core/partitions.py): partitions made ahead by beat's
task as the runtime role, rows in their month, any other time in DEFAULT, the append-only record
still refused on a new partition, and the station API's idempotency across months and after
the inbox's processed rows are archived."""

from __future__ import annotations

import datetime as dt

import msgspec
import psycopg
import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from audit.models import Event
from batches.models import Curve, Measurement
from core import partitions, tasks
from core.db_roles import runtime_role
from core.errors import DomainError
from demo.demo_data import nominal_stacking_readings
from stations import intake, worker
from stations.models import ArchivedInboxEntry, InboxEntry, InboxKey
from stations.schema import StationResultIn
from stations.selectors import find_entry, unapplied_results
from tests.core.test_database_roles import as_runtime_role, refused

pytestmark = pytest.mark.django_db


@pytest.fixture
def role() -> str:
    return runtime_role()[0]


def _one(query: str, params: list | None = None):
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchone()


def _month(moment: dt.datetime, months: int = 0) -> dt.date:
    year, month = divmod(moment.year * 12 + moment.month - 1 + months, 12)
    return dt.date(year, month + 1, 1)


def _where(table: str, row_id: int) -> str:
    """The partition a row is in."""
    return _one(f"SELECT tableoid::regclass::text FROM {table} WHERE id = %s", [row_id])[0]


def _event_at(moment: str) -> int:
    """An audit event written straight into the table at a time of the test's choosing."""
    return _one(
        "INSERT INTO audit_event (occurred_at, actor, verb, subject_type, subject, reason, data) "
        "VALUES (%s::timestamptz, 'test', 'tested', 'cell', 'X', '', '{}') RETURNING id",
        [moment],
    )[0]


# ---------------------------------------------------------------- made ahead


def test_the_partitions_of_this_month_and_the_months_ahead_are_made_once(role):
    now = timezone.now()
    with as_runtime_role(role):  # as beat's worker connects
        created = tasks.make_partitions()
        assert set(created) == set(partitions.TABLES)
        again = partitions.ensure_partitions(6)
        assert partitions.ensure_partitions(6) == dict.fromkeys(partitions.TABLES, 0)
    assert sum(again.values()) == 3 * len(partitions.TABLES)  # months 4 to 6 were new
    for table in partitions.TABLES:
        names = {name for name, _ in partitions.partitions(table)}
        wanted = {f"{table}_p{_month(now, i):%Y%m}" for i in range(7)} | {f"{table}_default"}
        assert wanted <= names
        # Made by the owner's function: the runtime role owns none of them.
        owner = _one("SELECT tableowner FROM pg_tables WHERE tablename = %s", [max(names)])[0]
        assert owner != role


def test_the_months_of_a_history_are_made_before_it_is_copied_in():
    first, last = dt.date(2024, 11, 1), dt.date(2025, 10, 1)
    assert partitions.ensure_months(first, last, ["batches_measurement"]) == 12
    assert partitions.ensure_months(first, last, ["batches_measurement"]) == 0
    names = {name for name, _ in partitions.partitions("batches_measurement")}
    assert {"batches_measurement_p202411", "batches_measurement_p202510"} <= names


def test_the_runtime_role_calls_only_the_maintenance_functions(role):
    with as_runtime_role(role):
        error = refused(
            lambda: _one("SELECT mes_create_partition('audit_event', %s)", [dt.date(2040, 1, 1)])
        )
    assert isinstance(error, psycopg.errors.InsufficientPrivilege)


def test_each_partition_gets_the_autovacuum_settings_of_its_kind_and_a_closed_month_freezes():
    partitions.ensure_partitions(1)
    last_month = _month(timezone.now(), -1)
    _one("SELECT mes_create_partition('batches_measurement', %s)", [last_month])
    partitions.ensure_partitions(1)
    options = dict(
        _rows_of(
            "SELECT c.relname, c.reloptions FROM pg_inherits i JOIN pg_class c "
            "ON c.oid = i.inhrelid WHERE i.inhparent = 'batches_measurement'::regclass"
        )
    )
    this_month = f"batches_measurement_p{_month(timezone.now()):%Y%m}"
    assert "autovacuum_vacuum_insert_scale_factor=0" in options[this_month]
    assert "autovacuum_freeze_min_age=0" not in options[this_month]
    assert "autovacuum_freeze_min_age=0" in options[f"batches_measurement_p{last_month:%Y%m}"]


def _rows_of(query: str) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(query)
        return cursor.fetchall()


def test_a_brin_index_on_the_time_of_each_table():
    for table, spec in partitions.TABLES.items():
        (definition,) = _one(
            "SELECT indexdef FROM pg_indexes WHERE tablename = %s AND indexname = %s",
            [table, f"{table}_{spec.key}_brin"],
        )
        assert "USING brin" in definition


# ---------------------------------------------------------------- where rows land


def test_a_run_its_measurements_curves_and_event_land_in_this_month(proto_batch, stations, record):
    cell = proto_batch.cells.order_by("position").first()
    run = record(
        cell, stations["PR-STK-1"], curves={"force": {"unit": "N", "t_s": [0, 1], "values": [1, 2]}}
    )
    suffix = f"_p{_month(run.recorded_at):%Y%m}"
    measurements = list(Measurement.objects.filter(run=run))
    assert measurements and {m.recorded_at for m in measurements} == {run.recorded_at}
    assert {_where("batches_measurement", m.pk) for m in measurements} == {
        "batches_measurement" + suffix
    }
    curve = Curve.objects.get(run=run)
    assert curve.recorded_at == run.recorded_at
    assert _where("batches_curve", curve.pk) == "batches_curve" + suffix
    event = Event.objects.filter(subject=cell.serial, verb="step_recorded").get()
    assert _where("audit_event", event.pk) == "audit_event" + suffix


@pytest.mark.parametrize(
    "moment", ["0001-01-01 00:00+09 BC", "1970-01-01 00:00+00", "9999-12-31 23:59-14", "infinity"]
)
def test_a_time_no_partition_holds_lands_in_default_and_the_insert_never_fails(moment):
    partitions.ensure_partitions(0)
    assert _where("audit_event", _event_at(moment)) == "audit_event_default"


def test_rows_a_month_left_in_default_move_into_its_partition_when_it_is_made():
    far = _month(timezone.now(), 9)
    row = _event_at(f"{far:%Y-%m}-15 12:00+00")
    assert _where("audit_event", row) == "audit_event_default"
    # Beat's task runs in a transaction of its own; here the insert's deferred foreign-key
    # check is still pending, and PostgreSQL alters no table with one pending.
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    partitions.ensure_partitions(9)
    assert _where("audit_event", row) == f"audit_event_p{far:%Y%m}"
    assert Event.objects.filter(pk=row).count() == 1
    # The append-only trigger, off for the move, is on again in DEFAULT.
    other = _event_at("infinity")
    with pytest.raises(IntegrityError), transaction.atomic():
        Event.objects.filter(pk=other).delete()


def test_the_record_stays_append_only_on_a_partition_made_later(role):
    far = _month(timezone.now(), 10)
    with as_runtime_role(role):
        partitions.ensure_partitions(10)
    row = _event_at(f"{far:%Y-%m}-02 08:00+00")
    assert _where("audit_event", row) == f"audit_event_p{far:%Y%m}"
    # The owner: the trigger, cloned onto the new partition, refuses.
    with pytest.raises(IntegrityError), transaction.atomic():
        Event.objects.filter(pk=row).update(verb="changed")
    with as_runtime_role(role):
        error = refused(lambda: Event.objects.filter(pk=row).update(verb="changed"))
        assert isinstance(error, psycopg.errors.InsufficientPrivilege)
        error = refused(lambda: _one(f"DELETE FROM audit_event_p{far:%Y%m}"))
        assert isinstance(error, psycopg.errors.InsufficientPrivilege)
    assert Event.objects.get(pk=row).verb == "tested"


# ---------------------------------------------------------------- idempotency and the archive


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


def _age(event_ids: list[str], days: int) -> None:
    """Rows and keys as if received `days` ago, in that month's partition."""
    then = timezone.now() - dt.timedelta(days=days)
    _one("SELECT mes_create_partition('batches_inboxentry', %s)", [_month(then)])
    interval = dt.timedelta(days=days)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE batches_inboxentry SET received_at = received_at - %s, "
            "enqueued_at = enqueued_at - %s, processed_at = processed_at - %s "
            "WHERE event_id = ANY(%s)",
            [interval, interval, interval, event_ids],
        )
        cursor.execute(
            "UPDATE stations_inboxkey SET received_at = received_at - %s WHERE event_id = ANY(%s)",
            [interval, event_ids],
        )


def test_an_event_sent_again_months_later_and_after_archiving_is_a_repeat(
    proto_batch, stations, role
):
    station = stations["PR-STK-1"]
    good, unknown = proto_batch.cells.order_by("position").first(), "NO-SUCH-CELL"
    readings = nominal_stacking_readings(proto_batch.design)
    sent = [_result("old-good", good.serial, readings), _result("old-bad", unknown, readings)]
    worker.process_entries(intake.accept_results(station, sent).entry_ids)
    assert dict(InboxEntry.objects.values_list("event_id", "status")) == {
        "old-good": "processed",
        "old-bad": "rejected",
    }
    _age(["old-good", "old-bad"], days=200)
    old_month = f"batches_inboxentry_p{_month(timezone.now() - dt.timedelta(days=200)):%Y%m}"
    assert {
        _where("batches_inboxentry", pk) for pk in InboxEntry.objects.values_list("pk", flat=True)
    } == {old_month}

    # Another month: still a repeat.
    again = intake.accept_results(station, sent)
    assert (again.accepted, again.duplicates) == (0, 2)

    with as_runtime_role(role):
        assert tasks.archive_inbox() == 1
        assert tasks.archive_inbox() == 0
    # The processed row moved, with all it had; the rejected one stays on the engineers' list.
    assert list(InboxEntry.objects.values_list("event_id", flat=True)) == ["old-bad"]
    archived = ArchivedInboxEntry.objects.get()
    assert (archived.event_id, archived.status, archived.run_id is not None) == (
        "old-good",
        "processed",
        True,
    )
    assert [e.event_id for e in unapplied_results(state="rejected")] == ["old-bad"]
    assert InboxKey.objects.filter(station=station).count() == 2

    # Archived: still a repeat, and the same id with other content still refused.
    again = intake.accept_results(station, sent)
    assert (again.accepted, again.duplicates) == (0, 2)
    assert not InboxEntry.objects.filter(event_id="old-good").exists()
    changed = _result("old-good", good.serial, {**readings, "layer_count": 1.0})
    with pytest.raises(DomainError) as caught:
        intake.accept_results(station, [changed])
    assert caught.value.code == "event_id_reused"
    # The station may still ask for its status.
    found = find_entry(station, "old-good", ["status", "received_at"])
    assert isinstance(found, ArchivedInboxEntry) and found.status == "processed"


def test_processed_rows_within_the_retention_period_stay_in_the_inbox(proto_batch, stations):
    station = stations["PR-STK-1"]
    cell = proto_batch.cells.order_by("position").first()
    readings = nominal_stacking_readings(proto_batch.design)
    worker.process_entries(
        intake.accept_results(station, [_result("recent", cell.serial, readings)]).entry_ids
    )
    _age(["recent"], days=30)
    assert partitions.archive_inbox(90) == 0
    assert InboxEntry.objects.filter(event_id="recent", status="processed").exists()
