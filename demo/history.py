"""A year of the Yokohama pilot line, generated fast: `manage.py generate_history --cells N`.

The cells go through the pilot route one after another over the past `days`, in batches of a
few hundred (one of 10,000 when there are enough cells), under the design's recipe versions in
force at the time; readings come from the demo's generators (demo.demo_data), failures open
holds that quality dispositions (rework, scrap, release) unless they are recent, lots are
received through the year and used up in turn. Rows go in with binary COPY, chunk by chunk in
constant memory, ids taken from the tables' sequences.

What is written follows what the services write (batches.services, stations.worker) so the
pages and the API read it as they read the real thing; it skips the services because recording
a year result by result would take days.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import struct
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.utils import timezone

from batches.models import DesignMaterial, HoldRule, MaterialLot
from core import partitions
from demo.cycler_files import formation_file
from demo.demo_data import READINGS, UPSETS
from lines.models import CellDesign, Equipment, Line, Recipe, RecipeVersion, Route, Station
from quality.models import GradingRuleSet
from quality.selection import Selection
from quality.yields import yield_report

LINE, ROUTE, DESIGN = "yokohama", "pilot", "SSB-20AH-Y1"
BIG_BATCH = 10_000  # one batch of this size once there are four times as many cells
CHUNK_CELLS = 20_000  # cells per transaction: memory stays flat whatever the total
SAMPLE_FILES = 16  # raw cycler files written; every formation entry names one of them
CURVE_HZ = 1  # pressing curves at 1 Hz (stations send 10 Hz; a year of those is ~100 GB)
PRESS_CYCLE_CELLS = 8

# Chance of an upset per step (demo.demo_data.UPSETS), what a pilot line sees.
UPSET_RATE = {"stacking": 0.012, "pressing": 0.008, "formation": 0.01, "aging": 0.006, "grading": 0}
# Hours from one step's result to the next one's (the cell waits in between).
STEP_GAP_H = {"stacking": 2.0, "pressing": 20.0, "formation": 24.0 * 7, "aging": 3.0}
# How quality dispositions a failed cell, and how long it takes them.
DISPOSITIONS = [("rework", 0.45), ("scrap", 0.35), ("release", 0.20)]
HOLD_HOURS = (2.0, 36.0)

# Lots: cells served per lot and a code prefix per role; suppliers and costs as in the seed.
LOT_CELLS = {
    "cathode": 20_000,
    "electrolyte": 20_000,
    "anode": 25_000,
    "current_collector": 50_000,
    "pouch": 100_000,
}
LOT_PREFIX = {
    "cathode": "CAT-H",
    "electrolyte": "SE-H",
    "anode": "AN-H",
    "current_collector": "CC-H",
    "pouch": "POUCH-H",
}

# The design's own recipe versions through the year: (day of the year, note, changes).
RECIPE_CHANGES = [
    (0, "Pilot release for the year", {}),
    (
        120,
        "Tighter stacking offsets, longer minimum dwell",
        {
            "stacking": {"max_offset_x_mm": {"max": 0.25}, "max_offset_y_mm": {"max": 0.25}},
            "pressing": {"dwell_s": {"min": 150.0}},
        },
    ),
    (
        250,
        "Formation ICE floor raised after the Q3 review",
        {"formation": {"initial_coulombic_efficiency": {"min": 0.82}}},
    ),
]

# Hooks run once the rows are in (summaries others maintain, e.g.); each gets the generator.
POST_STEPS: list[Callable[[HistoryGenerator], None]] = []


def generate_history(
    cells: int, *, days: int = 365, seed: int = 2026, out: Callable[[str], None] = print
) -> dict[str, int]:
    return HistoryGenerator(cells, days=days, seed=seed, out=out).run()


# ---------------------------------------------------------------- binary COPY by hand

COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
COPY_TRAILER = struct.pack(">h", -1)
PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)  # a binary timestamptz counts microseconds from it


def _pg_time(at: datetime) -> int:
    return (at - PG_EPOCH) // timedelta(microseconds=1)


FLOAT8_OID = 701


def _text_fields(prefix: str, value: str) -> tuple[list, dict]:
    data = value.encode()
    fields = [(f"{prefix}_n", ">i4")]
    if data:
        fields.append((prefix, f"S{len(data)}"))
    return fields, {f"{prefix}_n": len(data), **({prefix: data} if data else {})}


class FixedRows:
    """Rows whose layout is the same for every row of a group (constant texts, nulls): numpy
    writes them as COPY BINARY tuples without a Python call per row."""

    def __init__(self, columns: list[tuple[str, str, Any]]):
        # columns: (name, kind, constant or None); kind in int8, float8, text, bool, null
        self.fields: list[tuple[str, str]] = [("ncols", ">i2")]
        self.constants: dict[str, Any] = {"ncols": len(columns)}
        self.variables: list[str] = []
        for name, kind, constant in columns:
            if kind == "null":
                self.fields.append((f"{name}_n", ">i4"))
                self.constants[f"{name}_n"] = -1
            elif kind == "text":
                fields, values = _text_fields(name, constant)
                self.fields += fields
                self.constants.update(values)
            else:
                width, code = {"int8": (8, ">i8"), "float8": (8, ">f8"), "bool": (1, "u1")}[kind]
                self.fields += [(f"{name}_n", ">i4"), (name, code)]
                self.constants[f"{name}_n"] = width
                if constant is None:
                    self.variables.append(name)
                else:
                    self.constants[name] = constant
        self.dtype = np.dtype(self.fields)

    def encode(self, n: int, **columns: np.ndarray) -> bytes:
        rows = np.empty(n, dtype=self.dtype)
        for name, value in self.constants.items():
            rows[name] = value
        for name in self.variables:
            rows[name] = columns[name]
        return rows.tobytes()


# ---------------------------------------------------------------- the generator


@dataclass
class Chunk:
    """The rows of a run of whole batches, built in Python before they are copied."""

    batches: list = field(default_factory=list)
    batch_materials: list = field(default_factory=list)
    cells: list = field(default_factory=list)
    runs: list = field(default_factory=list)
    consumptions: list = field(default_factory=list)
    inbox: list = field(default_factory=list)
    audit: list = field(default_factory=list)
    holds: list = field(default_factory=list)
    hold_cells: list = field(default_factory=list)
    grades: list = field(default_factory=list)
    # measurements per (step kind, parameter, recipe version id): run ids, values, the runs'
    # recorded_at (binary), which measurements and curves are partitioned by (core.partitions) and
    # which is also their finished_at here, and the runs' cells and stations
    readings: dict = field(default_factory=lambda: defaultdict(lambda: ([], [], [], [], [])))
    curves: list = field(default_factory=list)  # (run id, peak, dwell, recorded_at)


TABLES = {
    "batches_batch": "batch",
    "batches_batchmaterial": "batchmaterial",
    "batches_cell": "cell",
    "batches_processrun": "run",
    "batches_measurement": "measurement",
    "batches_curve": "curve",
    "batches_consumption": "consumption",
    "batches_inboxentry": "inbox",
    "audit_event": "audit",
    "batches_hold": "hold",
    "batches_hold_cells": "hold_cell",
    "batches_cellgrade": "grade",
}


def _vacuum_database() -> None:
    """VACUUM (ANALYZE) of the whole database on this thread's own connection."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("VACUUM (ANALYZE)")
    finally:
        connection.close()


class HistoryGenerator:
    def __init__(self, cells: int, *, days: int, seed: int, out: Callable[[str], None]):
        if cells < 1:
            raise ValueError("at least one cell")
        self.total, self.days, self.out = cells, days, out
        self.rng = random.Random(seed)
        self.now = timezone.now().replace(microsecond=0)
        self.start = self.now - timedelta(days=days)
        self.counts: dict[str, int] = defaultdict(int)
        self.seconds: dict[str, float] = defaultdict(float)  # spent copying, per table

    # ------------------------------------------------------------ set-up

    def run(self) -> dict[str, int]:
        started = time.perf_counter()
        self._prepare()
        self.out(
            f"generating {self.total:,} cells over {self.days} days"
            f" in {len(self.batch_plan):,} batches"
        )
        done = 0
        # Every month's partitions first: rows of a month without one would land in DEFAULT.
        # Making one moves that month's rows out of DEFAULT, which PostgreSQL refuses while
        # checks are deferred in the transaction (when called inside one, as the tests do).
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        today = timezone.now().date()
        partitions.ensure_months(today - timedelta(days=self.days + 1), today)
        foreign_keys = self._drop_foreign_keys()
        try:
            for chunk in self._simulated_chunks():
                committed = time.perf_counter()
                self._copy(chunk)
                self.seconds["(copy and commit)"] += time.perf_counter() - committed
                done += len(chunk.cells)
                elapsed = time.perf_counter() - started
                self.out(
                    f"  {done:>10,} cells  {self.counts['measurement']:>12,} measurements"
                    f"  {elapsed:7.1f} s  ({done / elapsed:,.0f} cells/s)"
                )
        finally:
            self._restore_foreign_keys(foreign_keys)
        self.out(f"  foreign keys validated  {time.perf_counter() - started:7.1f} s")
        self._finish()
        for step in POST_STEPS:
            step(self)
        self.out(f"generated {self.total:,} cells in {time.perf_counter() - started:.1f} s")
        self.out(
            "seconds spent: "
            + ", ".join(
                f"{k} {v:.1f}" for k, v in sorted(self.seconds.items(), key=lambda kv: -kv[1])
            )
        )
        return dict(self.counts)

    def _simulated_chunks(self) -> Iterator[Chunk]:
        """Each chunk simulated, in order. Outside a transaction the next chunk is simulated on
        a thread of its own while this one is copied: the copy mostly waits for the database,
        and the simulation is a fifth of the time. Inside one (a test's), one after the other:
        the thread's queries, if any, would run outside that transaction. "(simulation)" counts
        the time spent waiting for a chunk to be simulated."""
        if connection.in_atomic_block:
            for batches in self._chunks():
                simulated = time.perf_counter()
                yield self._simulate(batches)
                self.seconds["(simulation)"] += time.perf_counter() - simulated
            return
        with ThreadPoolExecutor(1, thread_name_prefix="simulation") as pool:
            pending = None
            try:
                for batches in self._chunks():
                    following = pool.submit(self._simulate, batches)
                    if pending is not None:
                        yield self._simulated(pending)
                    pending = following
                if pending is not None:
                    yield self._simulated(pending)
            finally:
                pool.submit(connection.close)  # the thread's own connection, if it made one

    def _simulated(self, future) -> Chunk:
        waited = time.perf_counter()
        chunk = future.result()
        self.seconds["(simulation)"] += time.perf_counter() - waited
        return chunk

    def _prepare(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT 'lz4' = ANY(enumvals) FROM pg_settings"
                " WHERE name = 'default_toast_compression'"
            )
            self.lz4 = bool(cursor.fetchone()[0])
        self.line = Line.objects.get(code=LINE)
        self.route = Route.objects.get(line=self.line, code=ROUTE)
        self.steps = {s.station_kind: s for s in self.route.steps.order_by("position")}
        self.kinds = list(self.steps)
        self.design = CellDesign.objects.get(code=DESIGN)
        stations = Station.objects.filter(line=self.line).order_by("code")
        self.stations = defaultdict(list)
        for station in stations:
            self.stations[station.kind].append(station)
        self.equipment = {e.code: e.pk for e in Equipment.objects.filter(code__startswith="YK-")}
        users = {u.username: u for u in User.objects.all()}
        self.engineer, self.quality = users["lena"], users["quentin"]
        self.rule = HoldRule.objects.get(code="out_of_spec", in_force=True)
        self.rule_set = GradingRuleSet.objects.filter(design=self.design).order_by("-pk").first()
        self.bom = {
            m.role: m.quantity_per_cell for m in DesignMaterial.objects.filter(design=self.design)
        }
        self._plan_batches()
        with transaction.atomic():
            self._recipe_versions()
            self._lots()
        self._sample_files()
        self.ids = {table: self._next_id(table) for table in TABLES}

    def _plan_batches(self) -> None:
        """Batch sizes in order; cell k is stacked at start + k * interval (two stackers)."""
        sizes, left, big_at = [], self.total, None
        if self.total >= 4 * BIG_BATCH:
            big_at = self.total // 2
        placed = 0
        while left > 0:
            if big_at is not None and placed >= big_at:
                size, big_at = min(BIG_BATCH, left), None
            else:
                size = min(self.rng.randrange(200, 601, 10), left)
            sizes.append(size)
            left -= size
            placed += size
        self.batch_plan = sizes
        # The last cells are planned a few hours from now: the line has batches waiting.
        self.interval = (self.days * 86400 + 4 * 3600) / self.total

    def _recipe_versions(self) -> None:
        """The design's own recipes, one per step, with a version per change of the year; the
        line's default recipes of the seed stay as they were (other designs use them)."""
        self.versions: dict[str, list[tuple[datetime, RecipeVersion, dict]]] = {}
        for kind in self.kinds:
            default = (
                RecipeVersion.objects.released()
                .filter(recipe__line=self.line, recipe__station_kind=kind, recipe__design=None)
                .get()
            )
            base = {
                p.name: {
                    "unit": p.unit,
                    "target": p.target,
                    "min": p.min,
                    "max": p.max,
                    "required": p.required,
                }
                for p in default.parameters.all()
            }
            recipe, created = Recipe.objects.get_or_create(
                line=self.line,
                station_kind=kind,
                design=self.design,
                defaults={"name": f"{self.line.name} {kind} ({DESIGN}, year)"},
            )
            history = []
            existing = {v.version: v for v in recipe.versions.all()}
            parameters = {name: dict(p) for name, p in base.items()}
            previous = None
            for number, (day, note, changes) in enumerate(RECIPE_CHANGES, start=1):
                for name, change in changes.get(kind, {}).items():
                    parameters[name].update(change)
                # Days of a 365-day year, scaled to a shorter history.
                at = self.start + timedelta(days=day * self.days / 365 - (1 if day == 0 else 0))
                version = existing.get(number)
                if version is None:
                    version = RecipeVersion.objects.create(
                        recipe=recipe, version=number, note=note, status="draft"
                    )
                    RecipeVersion.objects.filter(pk=version.pk).update(created_at=at)
                    version.parameters.bulk_create(
                        [
                            version.parameters.model(version=version, name=name, **p)
                            for name, p in parameters.items()
                        ]
                    )
                    if previous is not None:
                        RecipeVersion.objects.filter(pk=previous.pk).update(status="superseded")
                    RecipeVersion.objects.filter(pk=version.pk).update(
                        status="released", released_at=at, released_by=self.engineer
                    )
                    self._event(
                        None,
                        at,
                        "lena",
                        self.engineer.pk,
                        "recipe_version_released",
                        "recipe",
                        f"{LINE}/{kind}",
                        note,
                        {"version": number, "superseded": previous.version if previous else None},
                    )
                history.append((at, version, {n: dict(p) for n, p in parameters.items()}))
                previous = version
            self.versions[kind] = history

    def _version_at(self, kind: str, at: datetime) -> tuple[RecipeVersion, dict]:
        chosen = self.versions[kind][0]
        for entry in self.versions[kind]:
            if entry[0] <= at:
                chosen = entry
        return chosen[1], chosen[2]

    def _lots(self) -> None:
        """Lots of each role, received a week before their first cell, used up in turn."""
        seeded = {
            lot.role: lot for lot in MaterialLot.objects.filter(code__regex=r"-2611-(A-)?0?1$")
        }
        self.lots: dict[str, list[int]] = {}
        for role, per_lot in LOT_CELLS.items():
            count = math.ceil(self.total / per_lot)
            like = seeded.get(role) or MaterialLot.objects.filter(role=role).first()
            ids = []
            for index in range(count):
                first, last = index * per_lot, min(self.total, (index + 1) * per_lot) - 1
                first_at, last_at = self._stack_time(first), self._stack_time(last)
                used_up = last_at < self.now and index < count - 1
                quantity = (self.bom[role] * Decimal(per_lot) * Decimal("1.02")).quantize(
                    Decimal("0.0001")
                )
                lot, _ = MaterialLot.objects.get_or_create(
                    code=f"{LOT_PREFIX[role]}-{self.start:%y}-{index + 1:03d}",
                    defaults={
                        "role": role,
                        "material": like.material,
                        "supplier": like.supplier,
                        "supplier_lot": f"{like.supplier[:3].upper()}-{index + 1:05d}",
                        "quantity": quantity,
                        "unit": like.unit,
                        "unit_cost": like.unit_cost,
                        "status": "consumed" if used_up else "released",
                        "received_at": first_at - timedelta(days=7),
                        "expires_at": first_at + timedelta(days=400),
                    },
                )
                ids.append(lot.pk)
            self.lots[role] = ids

    def _sample_files(self) -> None:
        """A few real cycler files on storage; the year's formation entries name one each."""
        station = self.stations["formation"][0]
        folder = Path(settings.MEDIA_ROOT) / "cycler" / station.code
        folder.mkdir(parents=True, exist_ok=True)
        rng = random.Random(11)
        self.files = []
        for _ in range(SAMPLE_FILES):
            content, _ = formation_file(self.design, rng)
            sha = hashlib.sha256(content).hexdigest()
            target = folder / sha
            if not target.exists():
                target.write_bytes(content)
            self.files.append((f"cycler/{station.code}/{sha}", sha, len(content)))

    def _next_id(self, table: str) -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT GREATEST((SELECT COALESCE(MAX(id), 0) FROM {table}),"
                f" (SELECT last_value FROM {self._sequence(table)})) + 1"
            )
            return cursor.fetchone()[0]

    @staticmethod
    def _sequence(table: str) -> str:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
            return cursor.fetchone()[0]

    def _take(self, table: str) -> int:
        value = self.ids[table]
        self.ids[table] = value + 1
        return value

    def _stack_time(self, k: int) -> datetime:
        return self.start + timedelta(seconds=(k + 0.5) * self.interval)

    # ------------------------------------------------------------ simulation

    def _chunks(self) -> Iterator[list[tuple[int, int, int]]]:
        """Whole batches, about CHUNK_CELLS cells at a time: (batch index, first cell, size)."""
        chunk, cells, first = [], 0, 0
        for index, size in enumerate(self.batch_plan):
            chunk.append((index, first, size))
            first += size
            cells += size
            if cells >= CHUNK_CELLS:
                yield chunk
                chunk, cells = [], 0
        if chunk:
            yield chunk

    def _event(self, chunk, at, actor, user_id, verb, subject_type, subject, reason, data):
        row = (at, actor, verb, subject_type, subject, reason, data, user_id)
        if chunk is None:
            with connection.cursor() as cursor:
                cursor.execute(
                    "INSERT INTO audit_event (occurred_at, actor, verb, subject_type, subject,"
                    " reason, data, user_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                    [*row[:6], json.dumps(data), user_id],
                )
        else:
            chunk.audit.append(row)

    def _simulate(self, batches: list[tuple[int, int, int]]) -> Chunk:
        chunk = Chunk()
        day_counts: dict[str, int] = defaultdict(int)
        for index, first, size in batches:
            first_at = self._stack_time(first)
            day = f"{first_at:%y%m%d}"
            day_counts[day] += 1
            code = f"YOK-{day}-{index % 1000:03d}"
            batch_id = self._take("batches_batch")
            created_at = first_at - timedelta(hours=20)
            finished: list[datetime | None] = []
            started = first_at <= self.now
            for position in range(1, size + 1):
                finished.append(self._cell(chunk, batch_id, code, first + position - 1, position))
            if not started:
                status, started_at, completed_at = "planned", None, None
            elif all(f is not None for f in finished):
                status, started_at = "completed", first_at
                completed_at = max(finished)
            else:
                status, started_at, completed_at = "in_progress", first_at, None
            chunk.batches.append(
                (batch_id, code, size, status, created_at, started_at, completed_at)
            )
            lots = {role: self._lot(role, first) for role in LOT_CELLS}
            for role, lot_id in lots.items():
                chunk.batch_materials.append(
                    (self._take("batches_batchmaterial"), batch_id, role, lot_id)
                )
            self._event(
                chunk,
                created_at,
                "lena",
                self.engineer.pk,
                "batch_created",
                "batch",
                code,
                "",
                {"route": ROUTE, "design": DESIGN, "quantity": size},
            )
            if started:
                self._event(
                    chunk,
                    first_at,
                    "station:YK-STK-1",
                    None,
                    "batch_in_progress",
                    "batch",
                    code,
                    "",
                    {"from": "planned"},
                )
            if completed_at:
                self._event(
                    chunk,
                    completed_at,
                    "station:YK-GRD-1",
                    None,
                    "batch_completed",
                    "batch",
                    code,
                    "",
                    {"from": "in_progress"},
                )
        return chunk

    def _lot(self, role: str, k: int) -> int:
        return self.lots[role][min(k // LOT_CELLS[role], len(self.lots[role]) - 1)]

    def _cell(self, chunk: Chunk, batch_id: int, code: str, k: int, position: int):
        """One cell along the route; returns when it finished (completed or scrapped) or None."""
        rng = self.rng
        cell_id = self._take("batches_cell")
        serial = f"{code}-{position:05d}"
        at = self._stack_time(k)
        created_at = at - timedelta(hours=20)
        status, next_kind, completed_at, grade, finished = "completed", None, None, "", None
        for kind in self.kinds:
            if at > self.now:
                status, next_kind = ("planned" if kind == "stacking" else "in_process"), kind
                break
            attempt = 1
            outcome = self._run(chunk, cell_id, serial, kind, k, at, attempt)
            if kind == "stacking":
                for role in LOT_CELLS:
                    chunk.consumptions.append(
                        (cell_id, self._lot(role, k), role, self.bom[role], outcome["run"], at)
                    )
            while not outcome["passed"]:
                disposition, closed_at = self._hold(chunk, cell_id, serial, kind, outcome, at)
                if disposition is None:  # still open: waits at the failed step
                    status, next_kind = "in_process", kind
                    break
                if disposition == "scrap":
                    status, finished = "scrapped", closed_at
                    break
                if disposition == "release":
                    at = closed_at
                    break
                attempt += 1
                at = closed_at + timedelta(minutes=rng.uniform(20, 90))
                if at > self.now:
                    status, next_kind = "in_process", kind
                    break
                outcome = self._run(chunk, cell_id, serial, kind, k, at, attempt)
            if status != "completed":
                break
            if kind == "grading":
                grade = (
                    "A"
                    if outcome["readings"]["rated_discharge_capacity_ah"]
                    >= (self.design.nominal_capacity_ah * 0.86)
                    else "B"
                )
                completed_at = finished = at
                chunk.grades.append((grade, at, cell_id))
                self._event(
                    chunk,
                    at,
                    "station:YK-GRD-1",
                    None,
                    "cell_graded",
                    "cell",
                    serial,
                    "",
                    {
                        "grade": grade,
                        "previous": "",
                        "rule_set": self.rule_set.pk if self.rule_set else None,
                    },
                )
            else:
                at = at + timedelta(hours=STEP_GAP_H[kind] * rng.uniform(0.8, 1.3))
        next_step = self.steps[next_kind].pk if next_kind else None
        chunk.cells.append(
            (
                cell_id,
                serial,
                position,
                status,
                grade,
                created_at,
                completed_at,
                batch_id,
                next_step,
            )
        )
        return finished

    def _run(self, chunk, cell_id, serial, kind, k, at, attempt) -> dict:
        rng = self.rng
        version, parameters = self._version_at(kind, at)
        upsets = UPSETS[kind]
        upset = (
            rng.choice(upsets)
            if upsets and attempt == 1 and rng.random() < UPSET_RATE[kind]
            else ""
        )
        if kind == "pressing":
            result = READINGS[kind](self.design, rng, upset=upset, with_curves=False)
        else:
            result = READINGS[kind](self.design, rng, upset=upset)
        readings, defects = result["measurements"], result["defects"]
        violations = []
        for name, value in readings.items():
            limits = parameters.get(name)
            if not limits or not limits["required"]:
                continue
            low, high = limits["min"], limits["max"]
            if (low is not None and value < low) or (high is not None and value > high):
                violations.append(
                    {
                        "max": high,
                        "min": low,
                        "value": value,
                        "problem": "out_of_spec",
                        "parameter": name,
                    }
                )
        passed = not violations and not defects
        run_id = self._take("batches_processrun")
        station = self.stations[kind][k % len(self.stations[kind])]
        equipment_ref = fixture_ref = channel_ref = ""
        equipment_id = None
        if kind == "stacking":
            equipment_id = self.equipment.get(f"YK-STACKER-{k % 2 + 1}")
        elif kind == "pressing":
            cycle = k // PRESS_CYCLE_CELLS
            equipment_ref = f"{station.code}-C{cycle:06d}"
            equipment_id = self.equipment.get(f"YK-WIP-{cycle % 2 + 1}")
            chunk.curves.append(
                (run_id, readings["peak_pressure_mpa"], readings["dwell_s"], _pg_time(at))
            )
        elif kind == "formation":
            fixture_ref = f"YK-FIX-{k // 64 % 2 + 1}"
            channel_ref = f"CH{k % 64 + 1:02d}"
            equipment_id = self.equipment.get(f"{fixture_ref}-{channel_ref}") or self.equipment.get(
                fixture_ref
            )
        event_id = f"hist-{serial}-{kind}" + (f"-{attempt}" if attempt > 1 else "")
        verdict = "pass" if passed else "fail"
        started_at = at - timedelta(seconds=60)
        chunk.runs.append(
            (
                run_id,
                equipment_ref,
                started_at,
                at,
                at,
                verdict,
                defects,
                violations,
                event_id,
                cell_id,
                version.pk,
                station.pk,
                self.steps[kind].pk,
                channel_ref,
                equipment_id,
                fixture_ref,
            )
        )
        for name, value in readings.items():
            bucket = chunk.readings[(name, version.pk, kind)]
            bucket[0].append(run_id)
            bucket[1].append(value)
            bucket[2].append(_pg_time(at))
            bucket[3].append(cell_id)
            bucket[4].append(station.pk)
        received = at + timedelta(seconds=2)
        if kind == "formation":
            path, sha, size = self.files[k % len(self.files)]
            payload = {
                "cell": serial,
                "path": path,
                "size": size,
                "format": "csv",
                "parser": "mes-csv 1",
                "sha256": sha,
                "timed_by": "receipt",
                "original_name": f"{serial}-formation.csv",
                "detected_format": "csv",
            }
            entry_kind, content_hash = "cycler_file", sha
        else:
            payload = {
                "cell": serial,
                "event_id": event_id,
                "occurred_at": at.isoformat(),
                "measurements": readings,
                **({"defects": defects} if defects else {}),
            }
            entry_kind = "result"
            content_hash = hashlib.sha256(event_id.encode()).hexdigest()
        chunk.inbox.append(
            (
                event_id,
                entry_kind,
                serial,
                at,
                content_hash,
                payload,
                verdict,
                violations,
                received,
                at + timedelta(seconds=3),
                run_id,
                station.pk,
            )
        )
        self._event(
            chunk,
            at,
            f"station:{station.code}",
            None,
            "step_recorded",
            "cell",
            serial,
            "",
            {
                "run": run_id,
                "step": kind,
                "station": station.code,
                "verdict": verdict,
                "event_id": event_id,
                "recipe_version": version.version,
            },
        )
        return {
            "passed": passed,
            "run": run_id,
            "readings": readings,
            "violations": violations,
            "defects": defects,
        }

    def _hold(self, chunk, cell_id, serial, kind, outcome, at):
        """The rule opens a hold on the failed cell; quality closes it some hours later."""
        rng = self.rng
        hold_id = self._take("batches_hold")
        names = [v["parameter"] for v in outcome["violations"]] + outcome["defects"]
        reason = f"{kind} failed: {', '.join(names)}"
        opened_at = at + timedelta(seconds=4)
        closed_at = opened_at + timedelta(hours=rng.uniform(*HOLD_HOURS))
        batch_id = None  # filled from the cell in _copy (same batch as the cell)
        label = self.rule.label
        self._event(
            chunk,
            opened_at,
            label,
            None,
            "hold_opened",
            "cell",
            serial,
            reason,
            {"hold": hold_id, "rule": label, "cells": 1},
        )
        if closed_at > self.now:
            disposition = None
        else:
            roll, disposition = rng.random(), "release"
            for name, share in DISPOSITIONS:
                if roll < share:
                    disposition = name
                    break
                roll -= share
        why = {
            "rework": f"re-run {kind}",
            "scrap": "not recoverable",
            "release": "within engineering margin, accepted",
            None: "",
        }[disposition]
        chunk.holds.append(
            (
                hold_id,
                serial,
                reason,
                "closed" if disposition else "open",
                opened_at,
                closed_at if disposition else None,
                disposition or "",
                why,
                batch_id,
                self.quality.pk if disposition else None,
                outcome["run"],
                kind,
                cell_id,
            )
        )
        chunk.hold_cells.append((self._take("batches_hold_cells"), hold_id, cell_id))
        if disposition:
            user = self.quality.username
            verb = {
                "rework": "cell_rework",
                "scrap": "cell_scrapped",
                "release": "deviation_accepted",
            }[disposition]
            data = {
                "cell_rework": {"step": kind, "was_next": kind},
                "cell_scrapped": {"from": "in_process"},
                "deviation_accepted": {"hold": hold_id, "run": outcome["run"]},
            }[verb]
            self._event(
                chunk,
                closed_at,
                user,
                self.quality.pk,
                verb,
                "cell",
                serial,
                f"hold {hold_id}: {why}",
                data,
            )
            self._event(
                chunk,
                closed_at,
                user,
                self.quality.pk,
                "hold_closed",
                "cell",
                serial,
                why,
                {"hold": hold_id, "disposition": disposition, "cells": 1, "serials": [serial]},
            )
        return disposition, closed_at

    # ------------------------------------------------------------ copy

    def _copy(self, chunk: Chunk) -> None:
        raw = connection.connection
        batch_of_cell = {cell[0]: cell[7] for cell in chunk.cells}
        with transaction.atomic(), raw.cursor() as cursor:
            # A lost chunk on a crash is regenerated, not recovered: no wait for the WAL flush;
            # lz4 compresses the curves' arrays several times faster than the default pglz (a
            # server built without it, as the embedded one is, keeps pglz).
            cursor.execute("SET LOCAL synchronous_commit = off")
            if self.lz4:
                cursor.execute("SET LOCAL default_toast_compression = 'lz4'")
            self._copy_rows(
                cursor,
                "batches_batch",
                "id, code, planned_quantity, status, created_at, started_at, completed_at,"
                " created_by_id, line_id, route_id, design_id",
                [
                    "int8",
                    "text",
                    "int4",
                    "text",
                    "timestamptz",
                    "timestamptz",
                    "timestamptz",
                    "int4",
                    "int8",
                    "int8",
                    "int8",
                ],
                (
                    (*b, self.engineer.pk, self.line.pk, self.route.pk, self.design.pk)
                    for b in chunk.batches
                ),
            )
            self._copy_rows(
                cursor,
                "batches_batchmaterial",
                "id, batch_id, role, lot_id",
                ["int8", "int8", "text", "int8"],
                chunk.batch_materials,
            )
            self._copy_rows(
                cursor,
                "batches_cell",
                "id, serial, position, status, grade, created_at, completed_at, batch_id, next_step_id",
                [
                    "int8",
                    "text",
                    "int4",
                    "text",
                    "text",
                    "timestamptz",
                    "timestamptz",
                    "int8",
                    "int8",
                ],
                chunk.cells,
            )
            self._copy_rows(
                cursor,
                "batches_processrun",
                "id, equipment_ref, operator, started_at, finished_at, recorded_at, verdict,"
                " equipment_verdict, defects, violations, event_id, cell_id, recipe_version_id,"
                " station_id, step_id, channel_ref, equipment_id, fixture_ref",
                [
                    "int8",
                    "text",
                    "text",
                    "timestamptz",
                    "timestamptz",
                    "timestamptz",
                    "text",
                    "text",
                    "varchar[]",
                    "jsonb",
                    "text",
                    "int8",
                    "int8",
                    "int8",
                    "int8",
                    "text",
                    "int8",
                    "text",
                ],
                (
                    (r[0], r[1], "", r[2], r[3], r[4], r[5], "", r[6], r[7], *r[8:])
                    for r in chunk.runs
                ),
            )
            self._copy_measurements(cursor, chunk)
            self._copy_curves(cursor, chunk)
            self._copy_rows(
                cursor,
                "batches_consumption",
                "id, cell_id, lot_id, role, quantity, run_id, recorded_at",
                ["int8", "int8", "int8", "text", "numeric", "int8", "timestamptz"],
                ((self._take("batches_consumption"), *c) for c in chunk.consumptions),
            )
            self._copy_rows(
                cursor,
                "batches_inboxentry",
                "id, event_id, kind, cell_serial, occurred_at, content_hash, payload, status,"
                " reason_code, reason, outcome, violations, attempts, received_at, enqueued_at,"
                " processed_at, run_id, station_id",
                [
                    "int8",
                    "text",
                    "text",
                    "text",
                    "timestamptz",
                    "text",
                    "jsonb",
                    "text",
                    "text",
                    "text",
                    "text",
                    "jsonb",
                    "int4",
                    "timestamptz",
                    "timestamptz",
                    "timestamptz",
                    "int8",
                    "int8",
                ],
                (
                    (
                        self._take("batches_inboxentry"),
                        e[0],
                        e[1],
                        e[2],
                        e[3],
                        e[4],
                        e[5],
                        "processed",
                        "",
                        "",
                        e[6],
                        e[7],
                        1,
                        e[8],
                        e[8],
                        e[9],
                        e[10],
                        e[11],
                    )
                    for e in chunk.inbox
                ),
            )
            # Each event's idempotency key (stations.models.InboxKey), as the intake writes it.
            self._copy_rows(
                cursor,
                "stations_inboxkey",
                "station_id, event_id, content_hash, received_at",
                ["int8", "text", "text", "timestamptz"],
                ((e[11], e[0], e[4], e[8]) for e in chunk.inbox),
            )
            self._copy_rows(
                cursor,
                "batches_hold",
                "id, scope, target, reason, status, opened_at, closed_at, disposition,"
                " disposition_reason, batch_id, closed_by_id, opened_by_id, rule_id, run_id,"
                " found_at, closing_error",
                [
                    "int8",
                    "text",
                    "text",
                    "text",
                    "text",
                    "timestamptz",
                    "timestamptz",
                    "text",
                    "text",
                    "int8",
                    "int4",
                    "int4",
                    "int8",
                    "int8",
                    "text",
                    "text",
                ],
                (
                    (
                        h[0],
                        "cell",
                        h[1],
                        h[2],
                        h[3],
                        h[4],
                        h[5],
                        h[6],
                        h[7],
                        batch_of_cell[h[12]],
                        h[9],
                        None,
                        self.rule.pk,
                        h[10],
                        h[11],
                        "",
                    )
                    for h in chunk.holds
                ),
            )
            self._copy_rows(
                cursor,
                "batches_hold_cells",
                "id, hold_id, cell_id",
                ["int8", "int8", "int8"],
                chunk.hold_cells,
            )
            if self.rule_set is not None:
                self._copy_rows(
                    cursor,
                    "batches_cellgrade",
                    "id, grade, reasons, graded_at, graded_by, cell_id, rule_set_id",
                    ["int8", "text", "jsonb", "timestamptz", "text", "int8", "int8"],
                    (
                        (
                            self._take("batches_cellgrade"),
                            g[0],
                            [],
                            g[1],
                            "station:YK-GRD-1",
                            g[2],
                            self.rule_set.pk,
                        )
                        for g in chunk.grades
                    ),
                )
            self._copy_rows(
                cursor,
                "audit_event",
                "id, occurred_at, actor, verb, subject_type, subject, reason, data, user_id",
                ["int8", "timestamptz", "text", "text", "text", "text", "text", "jsonb", "int4"],
                ((self._take("audit_event"), *a) for a in chunk.audit),
            )
            self._advance_sequences(cursor)

    def _copy_rows(self, cursor, table: str, columns: str, types: list[str], rows) -> None:
        n, started = 0, time.perf_counter()
        with cursor.copy(f"COPY {table} ({columns}) FROM STDIN WITH (FORMAT BINARY)") as copy:
            copy.set_types(types)
            for row in rows:
                copy.write_row(row)
                n += 1
        name = TABLES.get(table, table)  # the key table has no ids of its own to count in TABLES
        self.counts[name] += n
        self.seconds[name] += time.perf_counter() - started

    def _copy_measurements(self, cursor, chunk: Chunk) -> None:
        columns = (
            "id, run_id, name, value, unit, min, max, in_spec, recorded_at, finished_at, cell_id, "
            "station_id"
        )
        total, started = 0, time.perf_counter()
        with cursor.copy(
            f"COPY batches_measurement ({columns}) FROM STDIN WITH (FORMAT BINARY)"
        ) as copy:
            copy.write(COPY_HEADER)
            for (name, version_id, kind), readings in chunk.readings.items():
                run_ids, values, times, cells, stations = readings
                limits = self._limits(kind, version_id, name)
                unit = limits["unit"] if limits else ""
                low = limits["min"] if limits else None
                high = limits["max"] if limits else None
                value = np.asarray(values, dtype=np.float64)
                n = len(value)
                in_spec = None
                if low is not None or high is not None:
                    in_spec = np.ones(n, dtype=bool)
                    if low is not None:
                        in_spec &= value >= low
                    if high is not None:
                        in_spec &= value <= high
                layout = FixedRows(
                    [
                        ("id", "int8", None),
                        ("run", "int8", None),
                        ("name", "text", name),
                        ("value", "float8", None),
                        ("unit", "text", unit),
                        ("min", "null" if low is None else "float8", low),
                        ("max", "null" if high is None else "float8", high),
                        ("in_spec", "null" if in_spec is None else "bool", None),
                        ("recorded_at", "int8", None),  # a timestamptz is its microseconds
                        ("finished_at", "int8", None),
                        ("cell", "int8", None),
                        ("station", "int8", None),
                    ]
                )
                first = self.ids["batches_measurement"]
                self.ids["batches_measurement"] = first + n
                columns_ = {
                    "id": np.arange(first, first + n, dtype=np.int64),
                    "run": np.asarray(run_ids, dtype=np.int64),
                    "value": value,
                    "recorded_at": np.asarray(times, dtype=np.int64),
                    "finished_at": np.asarray(times, dtype=np.int64),
                    "cell": np.asarray(cells, dtype=np.int64),
                    "station": np.asarray(stations, dtype=np.int64),
                }
                if in_spec is not None:
                    columns_["in_spec"] = in_spec.astype(np.uint8)
                copy.write(layout.encode(n, **columns_))
                total += n
            copy.write(COPY_TRAILER)
        self.counts["measurement"] += total
        self.seconds["measurement"] += time.perf_counter() - started

    def _limits(self, kind: str, version_id: int, name: str) -> dict | None:
        for _, version, parameters in self.versions[kind]:
            if version.pk == version_id:
                return parameters.get(name)
        return None

    def _copy_curves(self, cursor, chunk: Chunk) -> None:
        """A pressure curve per pressing run (ramp, dwell at peak, release), as pressing_curves
        draws it, at CURVE_HZ; rows of one length share a layout."""
        by_length: dict[int, list[tuple[int, float, float]]] = defaultdict(list)
        started = time.perf_counter()
        ramp, release = 30, 20
        for run_id, peak, dwell, recorded_at in chunk.curves:
            points = int((ramp + round(dwell) + release) * CURVE_HZ) + 1
            by_length[points].append((run_id, peak, round(dwell), recorded_at))
        columns = "id, run_id, name, unit, x_name, x_unit, x, y, recorded_at"
        with cursor.copy(f"COPY batches_curve ({columns}) FROM STDIN WITH (FORMAT BINARY)") as copy:
            copy.write(COPY_HEADER)
            for points, rows in by_length.items():
                n = len(rows)
                array_header = np.dtype(
                    [
                        ("ndim", ">i4"),
                        ("flags", ">i4"),
                        ("oid", ">i4"),
                        ("dim", ">i4"),
                        ("lb", ">i4"),
                    ]
                )
                element = np.dtype([("n", ">i4"), ("v", ">f8")])
                layout = np.dtype(
                    [
                        ("ncols", ">i2"),
                        ("id_n", ">i4"),
                        ("id", ">i8"),
                        ("run_n", ">i4"),
                        ("run", ">i8"),
                    ]
                    + [(f"{c}_n", ">i4") for c in ("name",)]
                    + [("name", "S8")]
                    + [
                        ("unit_n", ">i4"),
                        ("unit", "S3"),
                        ("xn_n", ">i4"),
                        ("xn", "S3"),
                        ("xu_n", ">i4"),
                        ("xu", "S1"),
                    ]
                    + [("x_n", ">i4"), ("x_h", array_header), ("x", element, (points,))]
                    + [("y_n", ">i4"), ("y_h", array_header), ("y", element, (points,))]
                    + [("at_n", ">i4"), ("at", ">i8")]
                )
                out = np.empty(n, dtype=layout)
                out["ncols"] = 9
                first = self.ids["batches_curve"]
                self.ids["batches_curve"] = first + n
                out["id_n"], out["id"] = 8, np.arange(first, first + n)
                out["run_n"], out["run"] = 8, [r[0] for r in rows]
                out["name_n"], out["name"] = 8, b"pressure"
                out["unit_n"], out["unit"] = 3, b"MPa"
                out["xn_n"], out["xn"] = 3, b"t_s"
                out["xu_n"], out["xu"] = 1, b"s"
                out["at_n"], out["at"] = 8, [r[3] for r in rows]
                size = 20 + 12 * points
                t = np.arange(points, dtype=np.float64) / CURVE_HZ
                peak = np.array([r[1] for r in rows])[:, None]
                dwell = np.array([r[2] for r in rows], dtype=np.float64)[:, None]
                pressure = np.where(
                    t < ramp,
                    peak * t / ramp,
                    np.where(
                        t < ramp + dwell,
                        peak * (1 - 0.002 * np.sin(t)),
                        np.maximum(0.0, peak * (1 - (t - ramp - dwell) / release)),
                    ),
                ).round(2)
                for column, values in (("x", np.broadcast_to(t, (n, points))), ("y", pressure)):
                    out[f"{column}_n"] = size
                    header = out[f"{column}_h"]
                    header["ndim"], header["flags"], header["oid"] = 1, 0, FLOAT8_OID
                    header["dim"], header["lb"] = points, 1
                    out[f"{column}_h"] = header
                    out[column]["n"] = 8
                    out[column]["v"] = values
                copy.write(out.tobytes())
                self.counts["curve"] += n
            copy.write(COPY_TRAILER)
        self.seconds["curve"] += time.perf_counter() - started

    def _advance_sequences(self, cursor) -> None:
        for table in TABLES:
            cursor.execute(
                "SELECT setval(pg_get_serial_sequence(%s, 'id'), %s)", [table, self.ids[table] - 1]
            )

    # ------------------------------------------------------------ foreign keys

    def _drop_foreign_keys(self) -> list[tuple[str, str, str]]:
        """The tables' foreign keys are deferred: checked row by row at each commit, they took
        most of the time. Dropped for the load and added back, which checks every row in one
        pass per key (a failed check leaves them out and says so)."""
        with connection.cursor() as cursor:
            # Checks still pending in an open transaction (a test's) fire now: a table with
            # pending checks cannot be altered.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(
                "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)"
                " FROM pg_constraint WHERE contype = 'f' AND conrelid::regclass::text = ANY(%s)",
                [list(TABLES)],
            )
            keys = cursor.fetchall()
            for table, name, _ in keys:
                cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        return keys

    def _restore_foreign_keys(self, keys: list[tuple[str, str, str]]) -> None:
        with connection.cursor() as cursor:
            for table, name, definition in keys:
                cursor.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")

    # ------------------------------------------------------------ finish

    def _finish(self) -> None:
        # As a year of use leaves them: each batch's yield figures stored (quality.BatchYield),
        # as engineers' reads of yield store them, of every line and of the plant; and every
        # table vacuumed as autovacuum leaves a year's rows: visibility maps set, so index-only
        # reads (lot consumers, a week's runs) read no table pages. The vacuum runs on a second
        # connection meanwhile (its own thread: Django gives it one), the two sharing the
        # machine's cores. VACUUM cannot run inside a transaction (a test's): there statistics
        # only, after the figures.
        started = time.perf_counter()
        with ThreadPoolExecutor(1) as pool:
            vacuum = None if connection.in_atomic_block else pool.submit(_vacuum_database)
            for line in [None, *Line.objects.all()]:
                yield_report(Selection(line=line))
            self.out(f"  yield figures stored    {time.perf_counter() - started:7.1f} s")
            if vacuum is None:
                with connection.cursor() as cursor:
                    cursor.execute("ANALYZE")
            else:
                vacuum.result()  # its error, if any, raised here
        self.out(f"  tables vacuumed         {time.perf_counter() - started:7.1f} s")
