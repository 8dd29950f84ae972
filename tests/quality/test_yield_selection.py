"""Yield and the Pareto under every filter, on results from both lines that arrive in any order:
the figures equal the ones worked out here from the results themselves (the definitions in the
modules' docstrings), and the per cell and step rows (batches.CellStep) carry the columns of
their first result."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import fields
from datetime import timedelta

import psycopg
import pytest
from django.db import ProgrammingError, connection, transaction
from django.utils import timezone
from psycopg import sql

from batches.models import (
    Batch,
    Cell,
    CellStep,
    Consumption,
    MaterialLot,
    Measurement,
    ProcessRun,
)
from batches.services import create_batch, scrap_cell
from core.db_roles import runtime_role
from lines.models import CellDesign, Line, RecipeVersion, Route, RouteStep, Station
from lines.selectors import KIND_ORDER
from quality import yields
from quality.models import BatchYield, YieldEpoch
from quality.pareto import pareto
from quality.selection import CELL_STEP_PATHS, MEASUREMENT_PATHS, RUN_PATHS, Selection
from quality.yields import yield_from_results, yield_report

# What stations send as violations, odd shapes included: only an object naming a parameter
# counts in the Pareto.
VIOLATIONS = [
    [],
    [],
    [{"parameter": "stack_mass"}],
    [{"parameter": "density"}, {"parameter": "stack_mass"}],
    ["not an object"],
    [{"limit": 3}],
    {"parameter": "not in an array"},
]


def _insert(runs: list[ProcessRun], rng: random.Random) -> None:
    """The runs in the given order, one INSERT statement per one to seven of them."""
    while runs:
        size = rng.randint(1, 7)
        ProcessRun.objects.bulk_create(runs[:size])
        runs = runs[size:]


@pytest.fixture
def mixed(plant, line_engineer):
    """Three batches (two on the prototype line, one on Yokohama) whose cells have one to three
    results at each step of their route, each at a station of either line, on one of two press
    cycles or none, under any recipe version, at a time within five days, some failing, some
    with defects or violations; written a few at a time in a shuffled order, so that a result
    dated before a cell's first one at a step often arrives after it. Three cells are
    scrapped; some consumed a sheet cut from the cathode roll, some an electrolyte lot."""
    rng = random.Random(2611)
    proto, yokohama = Line.objects.get(code="proto"), Line.objects.get(code="yokohama")
    batches = [
        create_batch(
            line=line,
            design=CellDesign.objects.get(code=design),
            route=Route.objects.get(line=line, code=route),
            quantity=quantity,
            by=line_engineer,
            code=code,
        )
        for line, design, route, quantity, code in [
            (proto, "SSB-5AH-P1", "std", 8, "MIX-A"),
            (proto, "SSB-5AH-P1", "std-aging", 6, "MIX-B"),
            (yokohama, "SSB-20AH-Y1", "pilot", 8, "MIX-C"),
        ]
    ]
    stations = defaultdict(list)
    for station in Station.objects.all():
        stations[station.kind].append(station)
    versions = list(RecipeVersion.objects.all())
    start = timezone.now() - timedelta(days=10)
    runs = []
    for batch in batches:
        for step in RouteStep.objects.filter(route=batch.route).order_by("position"):
            for cell in batch.cells.all():
                for _ in range(rng.choice([1, 1, 2, 3])):
                    runs.append(
                        ProcessRun(
                            cell=cell,
                            step=step,
                            station=rng.choice(stations[step.station_kind]),
                            recipe_version=rng.choice(versions),
                            equipment_ref=rng.choice(["", "PC-1", "PC-2"]),
                            finished_at=start + timedelta(minutes=rng.randrange(5 * 24 * 60)),
                            verdict="fail" if rng.random() < 0.3 else "pass",
                            defects=rng.choice([[], [], ["misalignment"], ["burr", "void"]]),
                            violations=rng.choice(VIOLATIONS),
                        )
                    )
    rng.shuffle(runs)
    _insert(runs, rng)
    cells = list(Cell.objects.filter(batch__in=batches).order_by("pk"))
    Cell.objects.filter(pk__in=[c.pk for c in rng.sample(cells, 3)]).update(
        status=Cell.Status.SCRAPPED, next_step=None
    )
    sheet = MaterialLot.objects.get(code="CAT-2611-A-02")  # cut from CAT-ROLL-2611-A
    electrolyte = MaterialLot.objects.get(code="SE-2611-02")
    for cell in rng.sample(cells, 8):
        Consumption.objects.create(cell=cell, lot=sheet, role="cathode")
    for cell in rng.sample(cells, 5):
        Consumption.objects.create(cell=cell, lot=electrolyte, role="electrolyte")
    return batches, start


# ------------------------------------------------------------------ worked out from the results


def _first_and_last():
    """Each (cell, kind of step)'s results in time order, and each cell's last result."""
    at_step, last = defaultdict(list), {}
    for run in ProcessRun.objects.select_related("step").order_by("finished_at", "id"):
        at_step[run.cell_id, run.step.station_kind].append(run)
        last[run.cell_id] = run
    return at_step, last


def _expected_yield(selection: Selection, by: str):
    selected = set(selection.runs().values_list("id", flat=True))
    at_step, last = _first_and_last()
    cells = {cell.pk: cell for cell in Cell.objects.select_related("batch__line")}
    counted = {key: runs for key, runs in at_step.items() if runs[0].pk in selected}

    steps: dict[str, list[int]] = {}
    per_cell: dict[int, dict] = {}
    for (cell_id, kind), runs in counted.items():
        passed, reworked = runs[0].verdict == "pass", len(runs) > 1
        scrapped = cells[cell_id].status == Cell.Status.SCRAPPED
        row = steps.setdefault(kind, [0, 0, 0, 0, 0])
        row[0] += 1
        row[1 if passed else 2] += 1
        row[3] += reworked
        row[4] += scrapped and last[cell_id].step.station_kind == kind
        cell = per_cell.setdefault(
            cell_id, {"at": runs[0].finished_at, "pass": True, "reworked": False}
        )
        cell["at"] = min(cell["at"], runs[0].finished_at)
        cell["pass"] &= passed
        cell["reworked"] |= reworked

    def figures(ids):
        started = len(ids)
        first_pass = sum(per_cell[i]["pass"] for i in ids)
        return [
            started,
            first_pass,
            started - first_pass,
            sum(per_cell[i]["reworked"] for i in ids),
            sum(cells[i].status == Cell.Status.SCRAPPED for i in ids),
        ]

    step_rows = sorted(
        ((kind, *row) for kind, row in steps.items()), key=lambda r: KIND_ORDER[r[0]]
    )
    total = ("total", *figures(list(per_cell)))
    if by == "step":
        return step_rows, total
    key_of = {
        "batch": lambda i: cells[i].batch.code,
        "line": lambda i: cells[i].batch.line.code,
        "day": lambda i: timezone.localtime(per_cell[i]["at"]).date().isoformat(),
    }[by]
    groups = defaultdict(list)
    for cell_id in per_cell:
        groups[key_of(cell_id)].append(cell_id)
    ordered = sorted(groups, key=lambda k: (min(per_cell[i]["at"] for i in groups[k]), k))
    return [(key, *figures(groups[key])) for key in ordered], total


def _figures(row):
    return (row.key, row.started, row.first_pass, row.failed, row.reworked, row.scrapped)


def _queries(start):
    middle = (start + timedelta(days=2)).isoformat()
    later = (start + timedelta(days=3, hours=5)).isoformat()
    return [
        {},
        {"line": "proto"},
        {"line": "yokohama"},
        {"step": "pressing"},
        {"step": "stacking", "line": "proto"},
        {"station": "PR-STK-1"},
        {"station": "YK-STK-2"},
        {"equipment": "PC-1"},
        {"equipment": "PC-2", "step": "formation"},
        {"batch": "MIX-B"},
        {"design": "SSB-20AH-Y1"},
        {"design": "SSB-5AH-P1", "line": "yokohama"},
        {"recipe_version": "1"},
        {"recipe_version": "2"},
        {"recipe_version": "2", "batch": "MIX-A"},
        {"lot": "CAT-ROLL-2611-A"},  # the sheet cut from it
        {"lot": "SE-2611-02", "line": "proto"},
        {"since": middle},
        {"until": middle},
        {"line": "proto", "since": middle, "until": later},
        {"station": "PR-PRS-1", "equipment": "PC-1", "since": middle},
    ]


# ------------------------------------------------------------------------------------- tests


def test_the_filters_say_where_to_look_on_runs_measurements_and_cell_steps_alike():
    names = {f.name for f in fields(Selection)} - {"since", "until"} | {"at"}
    assert set(RUN_PATHS) == set(MEASUREMENT_PATHS) == set(CELL_STEP_PATHS) == names


def test_every_filter_selects_the_measurements_of_the_runs_it_selects(mixed):
    """Measurements are filtered on their own copies of their runs' cell, station and time:
    the same rows as through the runs, under every filter."""
    _, start = mixed
    Measurement.objects.bulk_create(
        Measurement(
            run=run,
            name=name,
            value=1.0,
            cell_id=run.cell_id,
            station_id=run.station_id,
            finished_at=run.finished_at,
            recorded_at=run.recorded_at,
        )
        for run in ProcessRun.objects.all()
        for name in ("mass", "thickness")
    )
    for query in _queries(start):
        selection, errors = Selection.from_query(query)
        assert errors == {}, query
        expected = set(
            Measurement.objects.filter(run__in=selection.runs(), name="mass").values_list(
                "id", flat=True
            )
        )
        assert expected, query
        assert set(selection.measurements("mass").values_list("id", flat=True)) == expected, query


def test_cell_steps_carry_their_first_result_whatever_order_results_arrive_in(mixed):
    at_step, _ = _first_and_last()
    rows = {(row.cell_id, row.step): row for row in CellStep.objects.select_related("cell__batch")}
    assert set(rows) == set(at_step)
    late_firsts = 0
    for key, runs in at_step.items():
        first, row = runs[0], rows[key]
        assert (row.first_run_id, row.first_at, row.first_passed) == (
            first.pk,
            first.finished_at,
            first.verdict == "pass",
        )
        assert (row.station_id, row.equipment_ref, row.recipe_version_id, row.design_id) == (
            first.station_id,
            first.equipment_ref,
            first.recipe_version_id,
            row.cell.batch.design_id,
        )
        assert (row.passes, row.fails) == (
            sum(r.verdict == "pass" for r in runs),
            sum(r.verdict != "pass" for r in runs),
        )
        late_firsts += first.pk != min(r.pk for r in runs)
    assert late_firsts > 10  # the data does have first results that arrived later


def test_a_result_dated_earlier_arriving_later_brings_its_columns(proto_batch, stations):
    cell = proto_batch.cells.get(position=1)
    step = RouteStep.objects.get(route=proto_batch.route, station_kind="stacking")
    old, new = RecipeVersion.objects.all()[:2]
    now = timezone.now()

    def run(station, version, ref, at, verdict):
        return ProcessRun.objects.create(
            cell=cell,
            step=step,
            station=station,
            recipe_version=version,
            equipment_ref=ref,
            finished_at=at,
            verdict=verdict,
        )

    run(stations["PR-STK-1"], old, "PC-1", now - timedelta(hours=1), "fail")
    row = CellStep.objects.get(cell=cell, step="stacking")
    assert (row.station_id, row.equipment_ref, row.recipe_version_id) == (
        stations["PR-STK-1"].pk,
        "PC-1",
        old.pk,
    )
    # A station of the other line, with its clock set two hours back, reports last.
    late = run(stations["YK-STK-2"], new, "PC-9", now - timedelta(hours=2), "pass")
    row.refresh_from_db()
    assert (row.first_run_id, row.first_at, row.first_passed, row.passes, row.fails) == (
        late.pk,
        late.finished_at,
        True,
        1,
        1,
    )
    assert (row.station_id, row.equipment_ref, row.recipe_version_id) == (
        stations["YK-STK-2"].pk,
        "PC-9",
        new.pk,
    )
    assert row.design_id == proto_batch.design_id
    # A later result changes the counts only.
    run(stations["PR-STK-1"], old, "PC-3", now, "pass")
    row.refresh_from_db()
    assert (row.first_run_id, row.station_id, row.equipment_ref, row.passes, row.fails) == (
        late.pk,
        stations["YK-STK-2"].pk,
        "PC-9",
        2,
        1,
    )
    assert yield_report(Selection.from_query({"line": "proto"})[0]).rows == []
    (stacking,) = yield_report(Selection.from_query({"line": "yokohama"})[0]).rows
    assert _figures(stacking) == ("stacking", 1, 1, 0, 1, 0)


@pytest.mark.parametrize("by", ["step", "batch", "day", "line"])
def test_every_filter_gives_the_yield_worked_out_from_the_results(mixed, by):
    _, start = mixed
    for query in _queries(start):
        selection, errors = Selection.from_query(query)
        assert errors == {}, query
        report = yield_report(selection, by=by)
        rows, total = _expected_yield(selection, by)
        assert [_figures(row) for row in report.rows] == rows, query
        assert _figures(report.total) == total, query
        # Read again: a selection of lines, batches and designs now sums the stored figures.
        assert yield_report(selection, by=by) == report, query


def test_the_filters_select_something_and_not_everything(mixed):
    _, start = mixed
    everything = yield_report(Selection()).total.started
    assert everything == 22
    for query in _queries(start)[1:]:
        started = yield_report(Selection.from_query(query)[0]).total.started
        assert 0 < started <= everything, query
    scrapped = yield_report(Selection()).total.scrapped
    assert scrapped == 3


def test_a_line_without_stations_has_no_figures(mixed):
    Line.objects.create(code="empty", name="A line still being built", site="Yokohama")
    selection, errors = Selection.from_query({"line": "empty"})
    assert errors == {}
    for by in ("step", "batch"):
        report = yield_report(selection, by=by)
        assert report.rows == [] and _figures(report.total) == ("total", 0, 0, 0, 0, 0)
    assert pareto(selection, "defect") == []


@pytest.mark.parametrize("by", ["defect", "parameter"])
def test_every_filter_gives_the_pareto_counted_from_the_results(mixed, by):
    _, start = mixed
    for query in _queries(start):
        selection, _ = Selection.from_query(query)
        expected: Counter[str] = Counter()
        for defects, violations in selection.runs().values_list("defects", "violations"):
            if by == "defect":
                expected.update(defects)
            elif isinstance(violations, list):
                expected.update(
                    v["parameter"] for v in violations if isinstance(v, dict) and "parameter" in v
                )
        rows = pareto(selection, by)
        assert {row.key: row.count for row in rows} == dict(expected), query
        assert [row.count for row in rows] == sorted((row.count for row in rows), reverse=True)
        if rows:
            assert rows[-1].cumulative_share == pytest.approx(1.0)


# ------------------------------------------------------------ figures stored per batch


def _whole_batch_queries():
    return [
        {},
        {"line": "proto"},
        {"line": "yokohama"},
        {"batch": "MIX-A"},
        {"batch": "MIX-C", "line": "proto"},
        {"design": "SSB-20AH-Y1"},
        {"design": "SSB-5AH-P1", "line": "yokohama"},
    ]


def _assert_stored_equal_counted():
    """Every selection of whole batches, every grouping: the figures summed from the stored rows
    equal those counted from the cell steps, read twice (computed, then stored)."""
    for query in _whole_batch_queries():
        selection, errors = Selection.from_query(query)
        assert errors == {}, query
        for by in ("step", "batch", "day", "line"):
            counted = yield_from_results(selection, by)
            assert yield_report(selection, by) == counted, (query, by)
            assert yield_report(selection, by) == counted, (query, by)
    assert BatchYield.objects.filter(batch__code="MIX-A", line=None, kind="cells").exists()


def _run(cell, kind, station_code, at, verdict="pass") -> ProcessRun:
    return ProcessRun.objects.create(
        cell=cell,
        step=RouteStep.objects.get(route=cell.batch.route, station_kind=kind),
        station=Station.objects.get(code=station_code),
        recipe_version=RecipeVersion.objects.first(),
        finished_at=at,
        verdict=verdict,
    )


def test_stored_figures_are_forgotten_by_whatever_changes_them(
    mixed, quality_engineer, monkeypatch
):
    monkeypatch.setattr(yields, "COMPUTED_AT_ONCE", 2)  # three batches: two statements
    batches, start = mixed
    mix_a = batches[0]
    _assert_stored_equal_counted()
    cell = mix_a.cells.exclude(status=Cell.Status.SCRAPPED).order_by("position").first()

    # A new result: a rework of a step, at the other line's station.
    _run(cell, "stacking", "YK-STK-2", start + timedelta(days=6), verdict="fail")
    assert not BatchYield.objects.filter(batch=mix_a).exists()
    _assert_stored_equal_counted()

    # A late result dated before the cell's first one there, failed, at the other line.
    first = CellStep.objects.get(cell=cell, step="pressing")
    _run(cell, "pressing", "YK-PRS-1", first.first_at - timedelta(hours=1), verdict="fail")
    assert not BatchYield.objects.filter(batch=mix_a).exists()
    _assert_stored_equal_counted()

    # A cell scrapped after its last step.
    scrap_cell(cell, by=quality_engineer, reason="Swollen pouch")
    assert not BatchYield.objects.filter(batch=mix_a).exists()
    _assert_stored_equal_counted()

    # A station moved to the other line takes its past results with it: every batch's rows
    # fall behind.
    epoch = YieldEpoch.objects.get(pk=1).value
    Station.objects.filter(code="PR-STK-1").update(line=Line.objects.get(code="yokohama"))
    assert YieldEpoch.objects.get(pk=1).value == epoch + 1
    _assert_stored_equal_counted()

    # A route step of another kind (the step a scrapped cell was scrapped after, read from its
    # runs): every batch's rows fall behind.
    RouteStep.objects.filter(route=mix_a.route, station_kind="formation").update(
        station_kind="grading"
    )
    assert YieldEpoch.objects.get(pk=1).value == epoch + 2
    _assert_stored_equal_counted()

    # The owner removing a scrapped cell's last run (the runtime role may not): the step it was
    # scrapped after is now its run before.
    scrapped = Cell.objects.filter(batch=mix_a, status=Cell.Status.SCRAPPED).first()
    last = ProcessRun.objects.filter(cell=scrapped).order_by("-finished_at", "-id").first()
    ProcessRun.objects.filter(pk=last.pk).delete()
    assert not BatchYield.objects.filter(batch=mix_a).exists()
    _assert_stored_equal_counted()


def test_a_batch_whose_cell_steps_name_another_design_is_counted_from_them(mixed):
    """Never done by the app (a batch's design is read-only), but should it happen the cell
    steps keep the design they were written with, which the selection filters on."""
    batches, _ = mixed
    _assert_stored_equal_counted()
    Batch.objects.filter(pk=batches[0].pk).update(design=CellDesign.objects.get(code="SSB-20AH-Y1"))
    assert not BatchYield.objects.filter(batch=batches[0]).exists()
    _assert_stored_equal_counted()


def test_days_stored_in_another_time_zone_are_not_read(mixed, settings):
    _assert_stored_equal_counted()
    settings.TIME_ZONE = "America/Los_Angeles"
    by_day = yield_from_results(Selection(), "day")
    assert yield_report(Selection(), "day") == by_day
    assert yield_report(Selection(), "day") == by_day


def _connection_of_its_own() -> psycopg.Connection:
    settings = connection.settings_dict
    return psycopg.connect(
        dbname=settings["NAME"],
        user=settings["USER"],
        host=settings["HOST"] or None,
        port=settings["PORT"] or None,
        password=settings["PASSWORD"] or None,
    )


def test_figures_are_not_stored_while_a_writer_holds_the_batch(mixed):
    """A writer changing a batch holds its lock (shared) until it commits: a read computing
    meanwhile answers with what it computed and stores nothing the writer may have made
    stale."""
    batches, _ = mixed
    writer = _connection_of_its_own()
    try:
        writer.execute(
            "SELECT pg_advisory_xact_lock_shared(hashtextextended('batch-yield:' || %s, 0))",
            [batches[0].pk],
        )
        assert yield_report(Selection(), "batch") == yield_from_results(Selection(), "batch")
        assert not BatchYield.objects.filter(batch=batches[0]).exists()
        assert BatchYield.objects.filter(batch=batches[1]).exists()
        writer.rollback()
        assert yield_report(Selection(), "batch") == yield_from_results(Selection(), "batch")
        assert BatchYield.objects.filter(batch=batches[0]).exists()
    finally:
        writer.close()


@pytest.mark.parametrize(
    ("transaction_kind", "stored"),
    [
        ("ISOLATION LEVEL READ COMMITTED", 1),
        ("ISOLATION LEVEL REPEATABLE READ", 0),  # its snapshot may be older than the locks
        ("ISOLATION LEVEL SERIALIZABLE", 0),
        ("READ ONLY", 0),
    ],
)
def test_figures_are_stored_only_from_a_snapshot_taken_after_the_locks(
    db, transaction_kind, stored
):
    """Outside the test's transaction: a batch unknown there (figures of no cell)."""
    with _connection_of_its_own() as other:
        other.execute(f"BEGIN {transaction_kind}")
        computed = other.execute("SELECT * FROM quality_batch_yield(ARRAY[-1], 'UTC')").fetchall()
        assert [row[:4] for row in computed] == [(-1, None, "cells", "")]
        (count,) = other.execute(
            "SELECT count(*) FROM quality_batchyield WHERE batch_id = -1"
        ).fetchone()
        assert count == stored
        other.rollback()


def test_the_runtime_role_reads_stored_figures_and_cannot_write_them(mixed):
    role = runtime_role()[0]
    with connection.cursor() as cursor:
        cursor.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)).as_string())
    try:
        counted = yield_from_results(Selection(), "day")
        assert yield_report(Selection(), "day") == counted  # computed and stored
        assert yield_report(Selection(), "day") == counted  # read
        for statement in (
            "DELETE FROM quality_batchyield",
            "UPDATE quality_batchyield SET started = 0",
            "INSERT INTO quality_batchyield (batch_id, kind, key, zone, epoch, exact, started,"
            " first_pass, failed, reworked, scrapped) SELECT id, 'cells', '', 'UTC', 0, true,"
            " 1, 1, 0, 0, 0 FROM batches_batch LIMIT 1",
            "UPDATE quality_yieldepoch SET value = value - 1",
            "SELECT quality_forget_every_batch_yield()",
        ):
            with pytest.raises(ProgrammingError) as caught, transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute(statement)
            assert isinstance(caught.value.__cause__, psycopg.errors.InsufficientPrivilege)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET ROLE")
    assert BatchYield.objects.filter(line=None, kind="cells").count() == 3
