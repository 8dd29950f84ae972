from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import connection
from django.db.models import Count, F, Max, Q, Sum
from django.test import Client

from audit.models import Event
from batches.models import (
    Batch,
    BatchStepCount,
    Cell,
    CellActivity,
    CellStep,
    Consumption,
    Curve,
    Hold,
    HoldBatch,
    LotConsumerCount,
    MaterialLot,
    Measurement,
    ProcessRun,
)
from lines.models import Line
from quality.models import BatchYield
from quality.selection import Selection
from quality.yields import yield_from_results, yield_report
from stations.models import InboxEntry

CELLS = 2000


def test_a_generated_history_hangs_together(db, settings, tmp_path):
    """One history, generated once (it takes most of a minute), read four ways below."""
    settings.MEDIA_ROOT = tmp_path  # the seed's and the history's sample cycler files
    call_command("seed_demo", verbosity=0)
    call_command("generate_history", cells=CELLS, days=60, verbosity=0)
    history = Cell.objects.filter(serial__regex=r"^YOK-\d{6}-")
    _every_cell_is_traceable_to_its_lots_runs_and_recipe_versions(history)
    _holds_agree_with_the_cells_they_stopped(history)
    _lots_consumer_counts_agree_with_the_consumptions()
    _the_dashboard_answers_on_the_history(history)
    _the_history_lands_in_its_months_partitions_with_its_keys(history)
    _measurements_carry_their_runs_cell_station_and_time(history)
    _every_batch_s_yield_figures_are_stored_and_agree_with_its_results()
    _every_batch_s_step_counts_agree_with_its_cells_steps()
    _every_worked_cell_s_latest_times_agree_with_its_results()
    _every_hold_s_batches_agree_with_its_cells()


def _every_cell_is_traceable_to_its_lots_runs_and_recipe_versions(history):
    assert history.count() == CELLS
    runs = ProcessRun.objects.filter(cell__in=history)
    # A run names the design's own recipe for its step, released before the run finished.
    assert not runs.exclude(recipe_version__recipe__station_kind=F("step__station_kind")).exists()
    assert not runs.exclude(recipe_version__recipe__design__code="SSB-20AH-Y1").exists()
    assert not runs.filter(recipe_version__released_at__gt=F("finished_at")).exists()
    assert (
        runs.order_by().values("recipe_version").distinct().count() > 5
    )  # versions changed in the year
    # Every result was a station message the workers processed; pressing left its curve.
    assert InboxEntry.objects.filter(run__in=runs, status="processed").count() == runs.count()
    assert not runs.filter(measurements__isnull=True).exists()
    pressed = runs.filter(step__station_kind="pressing")
    assert Curve.objects.filter(run__in=pressed).count() == pressed.count()
    assert (
        Event.objects.filter(verb="step_recorded", subject__regex=r"^YOK-\d{6}-").count()
        == runs.count()
    )
    # Stacked cells consumed one lot of each of the five roles; planned ones nothing yet.
    stacked = history.filter(runs__step__station_kind="stacking").distinct()
    consumed = Consumption.objects.filter(cell__in=history)
    assert consumed.count() == 5 * stacked.count()
    assert not consumed.exclude(lot__received_at__lt=F("recorded_at")).exists()
    # Measurements carry the limits of the version they were judged against.
    out = Measurement.objects.filter(run__in=runs, in_spec=False)
    assert out.exists()
    assert not out.filter(run__verdict="pass").exists()


def _lots_consumer_counts_agree_with_the_consumptions():
    """Written by COPY, the history's consumptions are counted by the same triggers."""
    counted = dict(Consumption.objects.order_by().values_list("lot__code").annotate(n=Count("*")))
    summed = dict(
        LotConsumerCount.objects.order_by().values_list("lot__code").annotate(n=Sum("consumptions"))
    )
    assert {code: n for code, n in summed.items() if n} == counted
    for code, n in counted.items():
        lot = MaterialLot.objects.get(code=code)
        if lot.children.exists():
            continue
        cells = Cell.objects.filter(consumptions__lot=lot)
        kept = LotConsumerCount.objects.filter(lot=lot).aggregate(
            cells=Sum("cells"), scrapped=Sum("scrapped"), completed=Sum("completed")
        )
        assert kept == {
            "cells": n,
            "scrapped": cells.filter(status="scrapped").count(),
            "completed": cells.filter(status="completed").count(),
        }


def _holds_agree_with_the_cells_they_stopped(history):
    holds = Hold.objects.filter(cells__in=history)
    assert holds.filter(status="closed").exists() and holds.filter(status="open").exists()
    assert set(holds.values_list("disposition", flat=True)) == {"", "rework", "scrap", "release"}
    # A scrapped cell was scrapped by a hold; an open hold keeps its cell at the failed step.
    scrapped = history.filter(status="scrapped")
    assert scrapped.exists()
    assert not scrapped.exclude(holds__disposition="scrap").exists()
    for hold in holds.filter(status="open"):
        cell = hold.cells.get()
        assert cell.status == "in_process" and cell.next_step.station_kind == hold.found_at
    # A rework ran the step a second time.
    for hold in holds.filter(disposition="rework")[:20]:
        cell = hold.cells.get()
        again = cell.runs.filter(step__station_kind=hold.found_at).count()
        assert again >= 2 or cell.status == "in_process"
    # Finished cells are graded; batches are completed only when every cell is finished.
    done = history.filter(status="completed")
    assert done.exists() and not done.filter(Q(grade="") | Q(next_step__isnull=False)).exists()
    unfinished = Count("cells", filter=Q(cells__status__in=["planned", "in_process"]))
    batches = Batch.objects.filter(cells__in=history).distinct().annotate(unfinished=unfinished)
    assert not batches.filter(status="completed", unfinished__gt=0).exists()
    assert {"completed", "in_progress"} <= set(batches.values_list("status", flat=True))


def _the_dashboard_answers_on_the_history(history):
    client = Client()
    client.force_login(User.objects.get(username="quentin"))
    batch = Batch.objects.filter(cells__in=history).order_by("-planned_quantity").first()
    cell = history.filter(status="completed").first()
    for url in (
        "/",
        "/lines/yokohama/",
        "/lines/yokohama/live/stations",
        "/lines/yokohama/live/batches",
        "/lines/yokohama/live/holds",
        "/batches/",
        f"/batches/{batch.code}/",
        f"/cells/{cell.serial}/",
        "/holds/",
        "/lots/",
        f"/lots/{cell.consumptions.first().lot.code}/",
        f"/api/v1/batches/{batch.code}",
        f"/api/v1/cells/{cell.serial}",
    ):
        assert client.get(url).status_code == 200, url


def _the_history_lands_in_its_months_partitions_with_its_keys(history):
    from django.db import connection

    from stations.models import InboxKey

    runs = ProcessRun.objects.filter(cell__in=history)
    # Measurements and curves are partitioned by their run's recorded_at (core.partitions).
    assert not Measurement.objects.filter(run__in=runs).exclude(recorded_at=F("run__recorded_at"))
    assert not Curve.objects.filter(run__in=runs).exclude(recorded_at=F("run__recorded_at"))
    with connection.cursor() as cursor:
        for table in ("batches_measurement", "batches_curve", "audit_event", "batches_inboxentry"):
            cursor.execute(f"SELECT count(*) FROM {table}_default")
            assert cursor.fetchone()[0] == 0, table
            cursor.execute(
                "SELECT count(DISTINCT tableoid) FROM " + table + " WHERE tableoid <> %s::regclass",
                [f"{table}_default"],
            )
            assert cursor.fetchone()[0] >= 2, table  # sixty days: at least two months
    # A station sending a history's event again finds it: every inbox row has its key.
    entries = InboxEntry.objects.filter(run__in=runs)
    keys = InboxKey.objects.filter(event_id__in=entries.values("event_id"))
    assert keys.count() == entries.count()


def _measurements_carry_their_runs_cell_station_and_time(history):
    rows = Measurement.objects.filter(run__cell__in=history)
    assert rows.exists()
    assert not rows.exclude(
        cell_id=F("run__cell_id"),
        station_id=F("run__station_id"),
        finished_at=F("run__finished_at"),
    ).exists()


def _every_batch_s_yield_figures_are_stored_and_agree_with_its_results():
    stored = set(
        BatchYield.objects.filter(line=None, kind="cells", key="").values_list("batch", flat=True)
    )
    assert stored == set(Batch.objects.values_list("pk", flat=True))
    line = Line.objects.get(code="yokohama")
    assert yield_report(Selection(line=line)) == yield_from_results(Selection(line=line))


def _every_batch_s_step_counts_agree_with_its_cells_steps():
    summed = {
        (r["batch_id"], r["step"]): (r["passed"], r["failed"])
        for r in BatchStepCount.objects.values("batch_id", "step").annotate(
            passed=Sum("passed"), failed=Sum("failed")
        )
    }
    counted = {
        (r["batch_id"], r["step"]): (r["passed"], r["failed"])
        for r in CellStep.objects.order_by()
        .values("batch_id", "step")
        .annotate(
            passed=Count("pk", filter=Q(passes__gt=0)), failed=Count("pk", filter=Q(fails__gt=0))
        )
    }
    assert counted and summed == counted


def _every_worked_cell_s_latest_times_agree_with_its_results():
    latest = {
        r["cell_id"]: (r["last"], r["failed"], r["started"])
        for r in ProcessRun.objects.order_by()
        .values("cell_id")
        .annotate(
            last=Max("finished_at"),
            failed=Max("finished_at", filter=Q(verdict=ProcessRun.Verdict.FAIL)),
            started=Max("finished_at", filter=Q(step__position=1)),
        )
    }
    noted = {
        a.cell_id: (a.last_run_at, a.last_failed_at, a.last_started_at)
        for a in CellActivity.objects.all()
    }
    assert len(latest) > CELLS / 2 and noted == latest


def _every_hold_s_batches_agree_with_its_cells():
    noted = set(HoldBatch.objects.values_list("hold_id", "batch_id"))
    of_cells = set(
        Cell.objects.filter(holds__isnull=False).values_list("holds__id", "batch_id").distinct()
    )
    assert of_cells and noted == of_cells


@pytest.mark.django_db(transaction=True)
def test_a_history_generated_outside_a_transaction_is_whole_and_vacuumed(
    settings, tmp_path, monkeypatch
):
    """Outside a transaction each chunk is simulated on a thread while the one before is
    copied, and every table the history filled is vacuumed (on a second connection, while the
    yield figures are stored), as autovacuum leaves a year's tables."""
    from demo import history

    monkeypatch.setattr(history, "CHUNK_CELLS", 1)  # a chunk per batch: at least two here
    settings.MEDIA_ROOT = tmp_path
    call_command("seed_demo", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("SELECT now()")
        (started,) = cursor.fetchone()
    counts = history.generate_history(650, days=5, out=lambda line: None)
    generated = Cell.objects.filter(serial__regex=r"^YOK-\d{6}-")
    assert generated.count() == counts["cell"] == 650
    assert Batch.objects.filter(cells__in=generated).distinct().count() == counts["batch"] >= 2
    assert ProcessRun.objects.filter(cell__in=generated).count() == counts["run"] > 0
    assert Measurement.objects.filter(cell_id__in=generated).count() == counts["measurement"]
    filled = ["batches_cell", "batches_processrun", "batches_consumption", "batches_cellstep"]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname FROM pg_stat_user_tables WHERE relname = ANY(%s) AND last_vacuum >= %s",
            [filled, started],
        )
        assert sorted(name for (name,) in cursor.fetchall()) == sorted(filled)
    assert BatchYield.objects.exists()
