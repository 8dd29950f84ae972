"""Render time of every dashboard page and engineers' API read on the seeded demo plus 10,000
extra cells (one batch on the Yokohama line, all stacked, half pressed, every one consuming the
demo lots, so the line view, the batch, the lot and the holds see them all).

Runs in its own throwaway database on the server of DATABASE_URL (or the embedded one), in a
fresh process set up against it, and drops it at the end. Prints the median of a few requests
with Django's test Client per page. Figures only: nothing here asserts a timing.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXTRA_CELLS = 10_000
REPEATS = 5
BATCH = "YOK-BENCH-10K"


def main() -> None:
    """Create the throwaway database, measure in a child process, drop the database."""
    sys.path.insert(0, str(ROOT))
    import psycopg

    server_url = os.environ.get("DATABASE_URL") or _embedded_url()
    name = f"bench_pages_{os.getpid()}"
    admin = psycopg.connect(_with_db(server_url, "postgres"), autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        env = {
            **os.environ,
            "DATABASE_URL": _with_db(server_url, name),
            "DJANGO_DEBUG": "0",
            "DJANGO_HTTPS": "0",  # the test client speaks plain HTTP: no redirect to measure
        }
        env.setdefault("DJANGO_SECRET_KEY", "bench-only-secret-key-not-for-deployment")
        subprocess.run(
            [sys.executable, "-c", "from bench.bench_pages import measure; measure()"],
            cwd=ROOT,
            env=env,
            check=True,
        )
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def _embedded_url() -> str:
    from core.embedded_db import database_url

    return database_url(ROOT / ".data")


def _with_db(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


def measure() -> None:
    """In the child process: migrate, seed, add the cells, then time each page."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mes.settings")
    import django

    django.setup()
    from django.core.management import call_command

    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    call_command("seed_demo", verbosity=0)
    print(f"seeded demo in {time.perf_counter() - started:.1f} s", flush=True)
    started = time.perf_counter()
    batch = add_cells(EXTRA_CELLS)
    print(f"added {EXTRA_CELLS} cells in {time.perf_counter() - started:.1f} s", flush=True)
    time_pages(batch)


def add_cells(quantity: int, code: str = BATCH):
    """A batch of `quantity` cells through the services for what people do (plan, hold), and
    bulk rows for the station results: recording 15,000 results one by one through record_step
    would take many minutes and is measured by bench_ingestion, not here."""
    import random

    from django.contrib.auth.models import User
    from django.db import connection, transaction
    from django.utils import timezone

    from batches.models import Batch, Consumption, Measurement, ProcessRun
    from batches.services import create_batch, hold_batch
    from demo.demo_data import READINGS
    from lines.models import CellDesign, Line, Route, Station
    from lines.services import active_recipe_version
    from stations.models import InboxEntry

    line = Line.objects.get(code="yokohama")
    route = Route.objects.get(line=line, code="pilot")
    design = CellDesign.objects.get(code="SSB-20AH-Y1")
    engineer = User.objects.get(username="lena")
    lots = {"cathode": "CAT-2611-A-02", "electrolyte": "SE-2611-02", "anode": "AN-2611-01"}
    with transaction.atomic():
        batch = create_batch(
            line=line,
            design=design,
            route=route,
            quantity=quantity,
            by=engineer,
            material_lots=lots,
            code=code,
        )
        steps = list(route.steps.order_by("position"))
        stacker, press = Station.objects.get(code="YK-STK-1"), Station.objects.get(code="YK-PRS-1")
        versions = {s.pk: active_recipe_version(s) for s in (stacker, press)}
        rng = random.Random(7)
        now = timezone.now()
        cells = list(batch.cells.order_by("position"))
        runs, readings = [], []
        for index, cell in enumerate(cells):
            kinds = [("stacking", stacker, steps[0])]
            if index % 2 == 0:
                kinds.append(("pressing", press, steps[1]))
            for kind, station, step in kinds:
                data = READINGS[kind](design, rng)
                runs.append(
                    ProcessRun(
                        cell=cell,
                        step=step,
                        station=station,
                        recipe_version=versions[station.pk],
                        finished_at=now,
                        verdict="pass",
                        event_id=f"bench-{cell.serial}-{kind}",
                    )
                )
                readings.append(data["measurements"])
        ProcessRun.objects.bulk_create(runs, batch_size=2000)
        Measurement.objects.bulk_create(
            (
                Measurement(
                    run=run,
                    name=name,
                    value=value,
                    cell_id=run.cell_id,
                    station_id=run.station_id,
                    finished_at=run.finished_at,
                )
                for run, values in zip(runs, readings, strict=True)
                for name, value in values.items()
            ),
            batch_size=5000,
        )
        lot_ids = dict(
            batch.planned_materials.values_list("role", "lot_id")
        )  # the lots planned for the batch
        Consumption.objects.bulk_create(
            (
                Consumption(cell=cell, lot_id=lot_id, role=role)
                for cell in cells
                for role, lot_id in lot_ids.items()
            ),
            batch_size=5000,
        )
        # Where the bulk results leave each cell: stacked cells wait for pressing, pressed ones
        # for formation.
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE batches_cell SET status = 'in_process', next_step_id = CASE"
                " WHEN position %% 2 = 1 THEN %s ELSE %s END WHERE batch_id = %s",
                [steps[2].pk, steps[1].pk, batch.pk],
            )
        Batch.objects.filter(pk=batch.pk).update(status="in_progress", started_at=now)
        # The stacker sent a hundredth of its results again under new event ids: rejected,
        # listed for the engineers.
        InboxEntry.objects.bulk_create(
            InboxEntry(
                station=stacker,
                event_id=f"bench-{cell.serial}-stacking-resent",
                cell_serial=cell.serial,
                occurred_at=now,
                content_hash="0" * 64,
                payload={},
                status="rejected",
                reason_code="wrong_step",
                reason=f"Cell {cell.serial}'s next step is pressing, not stacking.",
                attempts=1,
                received_at=now,
                enqueued_at=now,
                processed_at=now,
            )
            for cell in cells[::100]
        )
        hold_batch(batch, by=engineer, reason="bench: a hold over 10,000 cells")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return batch


def time_pages(batch) -> None:
    from django.contrib.auth.models import User
    from django.test import Client
    from rest_framework.test import APIClient

    from batches.models import Cell, Hold

    quentin = User.objects.get(username="quentin")
    browser, api = Client(), APIClient()
    browser.force_login(quentin)
    api.force_authenticate(quentin)
    cell = Cell.objects.filter(batch=batch, position=2).get()
    seeded_cell = Cell.objects.filter(runs__curves__isnull=False).order_by("serial").first()
    hold = Hold.objects.filter(batch=batch).first()
    pages = [
        ("home", "/"),
        ("line view yokohama", "/lines/yokohama/"),
        ("  live: stations", "/lines/yokohama/live/stations"),
        ("  live: batches", "/lines/yokohama/live/batches"),
        ("  live: holds", "/lines/yokohama/live/holds"),
        ("batches", "/batches/"),
        ("batch (10,000 cells)", f"/batches/{batch.code}/"),
        ("batch, filtered, page 100", f"/batches/{batch.code}/?step=formation&page=100"),
        ("labels sheet", f"/batches/{batch.code}/labels/?page=50"),
        ("cell (bench)", f"/cells/{cell.serial}/"),
        ("cell (seeded, curves)", f"/cells/{seeded_cell.serial}/"),
        ("lots", "/lots/"),
        ("lot (10,000+ consumers)", "/lots/AN-2611-01/"),
        ("holds queue", "/holds/"),
        ("recipes", "/recipes/"),
        ("search prefix", f"/search/?q={batch.code}-00"),
        ("station results not applied", "/station-results/"),
    ]
    endpoints = [
        ("GET /api/v1/lines", "/api/v1/lines"),
        ("GET /api/v1/batches", "/api/v1/batches"),
        ("GET /api/v1/batches/{code} (10,000 cells)", f"/api/v1/batches/{batch.code}"),
        ("GET /api/v1/cells/{serial}", f"/api/v1/cells/{cell.serial}"),
        ("GET /api/v1/lots", "/api/v1/lots"),
        ("GET /api/v1/lots/{code} (10,000+ cells)", "/api/v1/lots/AN-2611-01"),
        ("GET /api/v1/holds", f"/api/v1/holds?x={hold.pk}"),
    ]
    print(f"{'page':45} {'median ms':>10} {'max ms':>8}  status")
    for label, client, url in [(label, browser, url) for label, url in pages] + [
        (label, api, url) for label, url in endpoints
    ]:
        client.get(url)  # warm up: templates compiled, connection open
        times, status = [], None
        for _ in range(REPEATS):
            started = time.perf_counter()
            response = client.get(url)
            times.append((time.perf_counter() - started) * 1000)
            status = response.status_code
        print(
            f"{label:45} {statistics.median(times):10.1f} {max(times):8.1f}  {status}", flush=True
        )


if __name__ == "__main__":
    main()
