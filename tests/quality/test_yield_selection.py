"""Yield and the Pareto under every filter, on results from both lines that arrive in any order:
the figures equal the ones worked out here from the results themselves (the definitions in the
modules' docstrings), and the per cell and step rows (batches.CellStep) carry the columns of
their first result."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import fields
from datetime import timedelta

import pytest
from django.utils import timezone

from batches.models import Cell, CellStep, Consumption, MaterialLot, ProcessRun
from batches.services import create_batch
from lines.models import CellDesign, Line, RecipeVersion, Route, RouteStep, Station
from lines.selectors import KIND_ORDER
from quality.pareto import pareto
from quality.selection import CELL_STEP_PATHS, RUN_PATHS, Selection
from quality.yields import yield_report

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


def test_the_filters_say_where_to_look_on_runs_and_on_cell_steps_alike():
    names = {f.name for f in fields(Selection)} - {"since", "until"} | {"at"}
    assert set(RUN_PATHS) == set(CELL_STEP_PATHS) == names


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
