"""core.bulk writes what a save would: field conversions, auto_now_add, JSON, keys."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.models import Event
from audit.services import record_events
from batches.models import ProcessRun
from core.bulk import copy_objects, execute_bound, update_rows
from lines.models import StationKind
from tests.factories import StationFactory, planned_batch, released_recipe


@pytest.fixture
def stacked(db):
    """A cell about to be stacked, its step, a stacking station and the recipe version it runs."""
    cell = planned_batch(quantity=1).cells.get()
    line = cell.batch.line
    limits = {"unit": "um", "target": 500.0, "min": 450.0, "max": 550.0}
    recipe = released_recipe(line, StationKind.STACKING, {"stack_thickness_um": limits})
    station = StationFactory(line=line, kind=StationKind.STACKING)
    return cell, cell.next_step, station, recipe.versions.get()


def _run(stacked, **fields):
    cell, step, station, version = stacked
    fields.setdefault("verdict", ProcessRun.Verdict.PASS)
    return ProcessRun(cell=cell, step=step, station=station, recipe_version=version, **fields)


def test_copy_objects_writes_each_field_as_a_save_would(stacked):
    finished = timezone.now() - dt.timedelta(minutes=5)
    runs = [
        _run(stacked, finished_at=finished, defects=["crack"], violations=[{"parameter": "x"}]),
        _run(stacked, finished_at=finished, event_id="E-2", verdict=ProcessRun.Verdict.FAIL),
    ]
    before = timezone.now()
    copy_objects(runs, with_ids=True)
    assert all(run.pk and not run._state.adding for run in runs)
    first, second = (ProcessRun.objects.get(pk=run.pk) for run in runs)
    assert first.finished_at == finished and first.recorded_at >= before  # auto_now_add
    assert (first.defects, first.violations) == (["crack"], [{"parameter": "x"}])
    assert (second.verdict, second.event_id, second.defects) == ("fail", "E-2", [])
    assert first.cell_id == stacked[0].pk and first.recipe_version_id == stacked[3].pk


def test_a_naive_time_is_placed_in_the_zone_as_django_does(stacked, settings):
    naive = dt.datetime(2026, 11, 29, 9, 0)  # noqa: DTZ001 (naive on purpose)
    with pytest.warns(RuntimeWarning, match="naive datetime"):
        copy_objects([_run(stacked, finished_at=naive)], with_ids=True)
    stored = ProcessRun.objects.get().finished_at
    assert stored == timezone.make_aware(naive, timezone.get_default_timezone())


def test_update_rows_writes_the_named_fields_only(stacked):
    runs = [_run(stacked, finished_at=timezone.now(), event_id=f"E-{n}") for n in range(3)]
    copy_objects(runs, with_ids=True)
    for run in runs:
        run.violations = [{"run": run.pk}]
        run.event_id = "not written"
    update_rows(runs, ["violations"])
    for run in ProcessRun.objects.order_by("id"):
        assert run.violations == [{"run": run.pk}] and run.event_id.startswith("E-")


def test_update_rows_on_a_partitioned_table_gives_each_row_its_own_values(stacked):
    from core import partitions
    from stations.models import InboxEntry

    station = stacked[2]
    now = timezone.now()
    months = [now - dt.timedelta(days=40), now]  # rows in two months' partitions
    partitions.ensure_months(months[0].date(), now.date())
    entries = [
        InboxEntry.objects.create(
            station=station,
            event_id=f"E-{n}",
            cell_serial="C",
            content_hash="h",
            payload={},
            received_at=months[n % 2],
            enqueued_at=now,
        )  # fmt: skip
        for n in range(6)
    ]
    for n, entry in enumerate(entries):
        entry.attempts, entry.reason = n + 1, f"reason {n}"
        entry.cell_serial = "not written"
    update_rows(entries[::-1], ["attempts", "reason"], partition_key="received_at")
    stored = InboxEntry.objects.order_by("event_id").values_list(
        "event_id", "attempts", "reason", "cell_serial"
    )
    assert list(stored) == [(f"E-{n}", n + 1, f"reason {n}", "C") for n in range(6)]


def test_record_events_appends_rows_with_actor_time_and_data(stacked, line_engineer):
    before = timezone.now()
    record_events(
        [
            {"actor": "station:PR-STK-1", "verb": "v1", "subject_type": "cell", "subject": "C-1"},
            {
                "actor": line_engineer,
                "verb": "v2",
                "subject_type": "batch",
                "subject": "B-1",
                "reason": "why",
                "data": {"n": 1},
            },
        ]
    )
    station, person = Event.objects.filter(verb__in=["v1", "v2"]).order_by("verb")
    assert (station.actor, station.user_id, station.data) == ("station:PR-STK-1", None, {})
    assert (person.actor, person.user_id) == (line_engineer.username, line_engineer.pk)
    assert (person.reason, person.data) == ("why", {"n": 1})
    assert station.occurred_at >= before


def test_update_rows_takes_columns_of_nothing_but_nulls(stacked):
    started = timezone.now() - dt.timedelta(minutes=1)
    runs = [_run(stacked, finished_at=timezone.now(), started_at=started) for _ in range(2)]
    copy_objects(runs, with_ids=True)
    for run in runs:
        run.started_at = None
    update_rows(runs, ["started_at"])
    assert set(ProcessRun.objects.values_list("started_at", flat=True)) == {None}


def test_execute_bound_raises_django_errors_and_shares_the_transaction(stacked):
    with pytest.raises(IntegrityError), transaction.atomic():
        execute_bound(
            "INSERT INTO batches_processrun (cell_id, step_id, station_id, recipe_version_id,"
            " equipment_ref, operator, finished_at, recorded_at, verdict, equipment_verdict,"
            " defects, violations, event_id) SELECT c, %b, %b, %b, '', '', now(), now(),"
            " 'pass', '', '{}', '[]', '' FROM unnest(%b::bigint[]) AS c",
            [stacked[1].pk, stacked[2].pk, stacked[3].pk, [stacked[0].pk, None]],
        )
    assert not ProcessRun.objects.exists()  # the row before the refused one went with it
