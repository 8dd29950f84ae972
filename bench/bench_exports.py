"""Measurement exports of 1,000,000 rows: time and memory of the CSV download, and of an XLSX one
of 100,000 rows, on the seeded master data plus a batch of 10,000 cells run 10 times with 10
readings each (written by PostgreSQL itself with generate_series, in seconds).

Runs in its own throwaway database on the server of DATABASE_URL (or the embedded one), in a
fresh process, and drops it at the end. Memory is the growth of the process's peak resident set
during the download (VmHWM, reset before it) and, for CSV in a second run since tracing slows
it, the Python heap's peak (tracemalloc). Figures only: nothing here asserts.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CELLS = 10_000
RUNS_PER_CELL = 10
READINGS_PER_RUN = 10
XLSX_CELLS = 1_000  # 100,000 rows: XlsxWriter writes about 10^4-10^5 rows a second
URL = "/api/v1/exports/measurements"


def main() -> None:
    """Create the throwaway database, measure in a child process, drop the database."""
    sys.path.insert(0, str(ROOT))
    import psycopg

    from bench.bench_pages import _embedded_url, _with_db

    server_url = os.environ.get("DATABASE_URL") or _embedded_url()
    name = f"bench_exports_{os.getpid()}"
    admin = psycopg.connect(_with_db(server_url, "postgres"), autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        env = {**os.environ, "DATABASE_URL": _with_db(server_url, name), "DJANGO_DEBUG": "0"}
        env.setdefault("DJANGO_SECRET_KEY", "bench-only-secret-key-not-for-deployment")
        subprocess.run(
            [sys.executable, "-c", "from bench.bench_exports import measure; measure()"],
            cwd=ROOT,
            env=env,
            check=True,
        )
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def add_measurements(batch: Any, runs_per_cell: int, per_run: int) -> int:
    """Runs and readings written by PostgreSQL itself (generate_series), like the batch's first
    recorded run: every cell of the batch run `runs_per_cell` times, each run with `per_run`
    readings. Returns the readings written."""
    from django.db import connection

    from batches.models import Cell, Measurement, ProcessRun

    run = ProcessRun.objects.filter(cell__batch=batch).first()
    runs, cells, readings = (
        ProcessRun._meta.db_table,
        Cell._meta.db_table,
        Measurement._meta.db_table,
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {runs}
                (cell_id, step_id, station_id, recipe_version_id, equipment_ref, operator,
                 finished_at, recorded_at, verdict, equipment_verdict, defects, violations,
                 event_id)
            SELECT c.id, %s, %s, %s, 'CIP-' || k, '', %s + make_interval(secs => c.id * 10 + k),
                   now(), 'pass', '', '{{}}', '[]', ''
            FROM {cells} c, generate_series(1, %s) k
            WHERE c.batch_id = %s
            """,
            [run.step_id, run.station_id, run.recipe_version_id, run.finished_at,
             runs_per_cell, batch.pk],
        )  # fmt: skip
        cursor.execute(
            f"""
            INSERT INTO {readings} (run_id, name, value, unit, min, max, in_spec, recorded_at,
                                    cell_id, station_id, finished_at)
            SELECT r.id, 'bulk_reading_' || k, r.id * 0.001 + k, 'mm', 0, 1000000, true,
                   r.recorded_at, r.cell_id, r.station_id, r.finished_at
            FROM {runs} r, generate_series(1, %s) k
            WHERE r.cell_id IN (SELECT id FROM {cells} WHERE batch_id = %s) AND r.id <> %s
            """,
            [per_run, batch.pk, run.pk],
        )
        return cursor.rowcount


def bulk_batch(code: str, cells: int, by: Any) -> Any:
    """A proto batch of `cells` cells, its first cell stacked through the service with the
    demo lots, every cell then run RUNS_PER_CELL times in bulk (add_measurements)."""
    import random

    from django.utils import timezone

    from batches.services import StepResult, create_batch, record_step
    from demo.demo_data import READINGS
    from lines.models import CellDesign, Line, Route, Station

    line = Line.objects.get(code="proto")
    batch = create_batch(
        line=line,
        design=CellDesign.objects.get(code="SSB-5AH-P1"),
        route=Route.objects.get(line=line, code="std"),
        quantity=cells,
        by=by,
        code=code,
    )
    stacker = Station.objects.get(code="PR-STK-1")
    first = batch.cells.order_by("position").first()
    readings = READINGS["stacking"](batch.design, random.Random(1))
    record_step(
        first,
        stacker,
        StepResult(
            occurred_at=timezone.now(),
            measurements=readings["measurements"],
            material_lots={"cathode": "CAT-2611-A-01", "electrolyte": "SE-2611-01"},
        ),
        by="bench",
    )
    add_measurements(batch, RUNS_PER_CELL, READINGS_PER_RUN)
    return batch


def peak_rss_bytes() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))


def reset_peak_rss() -> None:
    # Writing 5 to clear_refs resets the process's peak resident set size (VmHWM) to its
    # current size, so the peak read afterwards is what came after.
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")


def download(client: Any, query: dict, *, traced: bool) -> dict[str, float]:
    """One export downloaded and dropped chunk by chunk: its lines, bytes, seconds and the
    memory it took (Python's traced peak when `traced`, else the peak RSS growth)."""
    started = time.perf_counter()
    reset_peak_rss()
    rss_before = peak_rss_bytes()
    if traced:
        tracemalloc.start()
    try:
        response = client.get(URL, query, secure=True)  # DJANGO_DEBUG=0 redirects to HTTPS
        lines = size = 0
        for chunk in response.streaming_content:
            lines += chunk.count(b"\n")
            size += len(chunk)
        peak = tracemalloc.get_traced_memory()[1] if traced else 0
    finally:
        if traced:
            tracemalloc.stop()
    return {
        "status": response.status_code,
        "lines": lines,
        "bytes": size,
        "seconds": time.perf_counter() - started,
        "python_peak": peak,
        "rss_growth": peak_rss_bytes() - rss_before,
    }


def measure() -> None:
    """In the child process: migrate, seed, add the rows, then download the exports."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mes.settings")
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connection
    from rest_framework.test import APIClient

    from demo.management.commands.seed_demo import Command as SeedDemo

    call_command("migrate", verbosity=0)
    SeedDemo().seed_master_data()
    quentin = User.objects.get(username="quentin")
    for code, cells in (("PROTO-EXPORT-1M", CELLS), ("PROTO-EXPORT-XLSX", XLSX_CELLS)):
        started = time.perf_counter()
        bulk_batch(code, cells, quentin)
        rows = cells * RUNS_PER_CELL * READINGS_PER_RUN
        print(f"{code}: {rows:,} readings written in {time.perf_counter() - started:.1f} s")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    client = APIClient()
    client.force_authenticate(quentin)
    query = {"batch": "PROTO-EXPORT-1M", "step": "stacking"}
    client.get(URL, {**query, "parameter": "bulk_reading_1"}, secure=True)  # first-use imports
    for traced in (False, True):
        figures = download(client, query, traced=traced)
        _print("CSV", figures, traced)
    # Untraced only: XlsxWriter allocates per cell, and tracing it takes several times as long.
    figures = download(client, {"batch": "PROTO-EXPORT-XLSX", "format": "xlsx"}, traced=False)
    _print("XLSX", figures, traced=False)


def _print(kind: str, figures: dict[str, float], traced: bool) -> None:
    memory = (
        f"peak Python memory {figures['python_peak'] / 1e6:.1f} MB (traced, slower)"
        if traced
        else f"peak RSS growth {figures['rss_growth'] / 1e6:.1f} MB"
    )
    rows = f"{figures['lines'] - 1:,} rows, " if kind == "CSV" else ""
    print(
        f"{kind} export: HTTP {figures['status']}, {rows}{figures['bytes'] / 1e6:.0f} MB in "
        f"{figures['seconds']:.1f} s; {memory}",
        flush=True,
    )
