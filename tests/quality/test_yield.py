"""First-pass yield, RTY, scrap and rework rates on batches whose fails and reworks are known."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pytest
from django.utils import timezone

from batches.models import Hold
from batches.services import create_batch, release_hold
from lines.models import CellDesign, Line, Route
from quality.selection import Selection
from quality.yields import yield_report


@pytest.fixture
def made(proto_batch, stations, record, line_engineer, quality_engineer):
    """Batch A (proto_batch, 10 cells) through stacking, pressing and formation, and batch B
    (2 cells) stacked only. Batch A's first results fall just after midnight in Tokyo (the
    evening before in UTC), batch B's the next morning.

    A, stacking:  cell 1 fails (misalignment), is reworked, passes; cell 2 fails (insulation)
                  and is scrapped; 3-10 pass.
    A, pressing:  cells 1, 3-10; cell 3 fails (low density), reworked, passes; cell 4 fails,
                  is reworked, fails again, is reworked, passes.
    A, formation: cells 1, 3-10; cell 5 fails (low ICE) and is scrapped.
    B, stacking:  cell 1 fails (misalignment) and stays held; cell 2 passes.
    """
    tokyo = timezone.get_default_timezone()
    day = (timezone.localtime() - timedelta(days=5)).date()
    start = datetime.combine(day, time(0, 30), tzinfo=tokyo)
    clock = iter(start + timedelta(minutes=i) for i in range(1000))
    cells = {cell.position: cell for cell in proto_batch.cells.all()}

    def step(position, station, upset=""):
        cell = cells[position]
        return record(cell, stations[station], upset=upset, occurred_at=next(clock))

    def dispose(position, disposition):
        hold = Hold.objects.get(cells=cells[position], status=Hold.Status.OPEN)
        release_hold(hold, by=quality_engineer, disposition=disposition, reason="tested")

    for position in range(1, 11):
        step(position, "PR-STK-1", {1: "misalignment", 2: "insulation"}.get(position, ""))
    dispose(1, "rework")
    step(1, "PR-STK-1")
    dispose(2, "scrap")
    for position in (1, *range(3, 11)):
        step(position, "PR-PRS-1", "low_density" if position in (3, 4) else "")
    dispose(3, "rework")
    step(3, "PR-PRS-1")
    dispose(4, "rework")
    step(4, "PR-PRS-1", "low_density")
    dispose(4, "rework")
    step(4, "PR-PRS-1")
    for position in (1, *range(3, 11)):
        step(position, "PR-FRM-1", "low_ice" if position == 5 else "")
    dispose(5, "scrap")

    line = Line.objects.get(code="proto")
    other = create_batch(
        line=line,
        design=CellDesign.objects.get(code="SSB-5AH-P1"),
        route=Route.objects.get(line=line, code="std"),
        quantity=2,
        by=line_engineer,
        code="PROTO-B",
    )
    morning = datetime.combine(day + timedelta(days=1), time(8, 0), tzinfo=tokyo)
    first, second = other.cells.order_by("position")
    record(first, stations["PR-STK-1"], upset="misalignment", occurred_at=morning)
    record(second, stations["PR-STK-1"], occurred_at=morning + timedelta(minutes=1))
    return proto_batch, other, day


def _figures(row):
    return (row.key, row.started, row.first_pass, row.failed, row.reworked, row.scrapped)


def test_yield_per_step_of_a_batch_with_known_fails_and_reworks(made):
    batch, _, _ = made
    selection, errors = Selection.from_query({"batch": batch.code})
    assert errors == {}

    report = yield_report(selection, by="step")

    assert [_figures(row) for row in report.rows] == [
        ("stacking", 10, 8, 2, 1, 1),
        ("pressing", 9, 7, 2, 2, 0),
        ("formation", 9, 8, 1, 0, 1),
    ]
    assert [row.fpy for row in report.rows] == pytest.approx([0.8, 7 / 9, 8 / 9])
    assert report.rty == pytest.approx(0.8 * 7 / 9 * 8 / 9)
    # Per cell: 6-10 passed everything first time; 1, 3 and 4 were reworked; 2 and 5 scrapped.
    assert _figures(report.total) == ("total", 10, 5, 5, 3, 2)
    assert report.total.scrap_rate == pytest.approx(0.2)
    assert report.total.rework_rate == pytest.approx(0.3)


def test_yield_per_batch_day_and_line(made):
    batch, other, day = made
    selection, _ = Selection.from_query({"line": "proto"})

    by_batch = yield_report(selection, by="batch")
    assert [_figures(row) for row in by_batch.rows] == [
        (batch.code, 10, 5, 5, 3, 2),
        (other.code, 2, 1, 1, 0, 0),
    ]
    assert by_batch.rows[1].fpy == pytest.approx(0.5)
    # Stacking now counts batch B too: 12 started, 9 first-pass.
    assert by_batch.rty == pytest.approx(9 / 12 * 7 / 9 * 8 / 9)

    # Batch A started just after midnight in Tokyo, which is still the day before in UTC.
    by_day = yield_report(selection, by="day")
    assert [_figures(row) for row in by_day.rows] == [
        (day.isoformat(), 10, 5, 5, 3, 2),
        ((day + timedelta(days=1)).isoformat(), 2, 1, 1, 0, 0),
    ]

    by_line = yield_report(selection, by="line")
    assert [_figures(row) for row in by_line.rows] == [("proto", 12, 6, 6, 3, 2)]
    assert _figures(by_line.total) == ("total", 12, 6, 6, 3, 2)


def test_a_cell_counts_where_its_first_result_at_a_step_is_selected(made):
    batch, _, _ = made
    first_stacking = batch.cells.get(position=1).runs.order_by("finished_at").first()
    # From just after cell 1's first stacking: its rework is selected, its first attempt is not,
    # so it is not counted at stacking (nor taken for a first pass there).
    since = (first_stacking.finished_at + timedelta(seconds=1)).isoformat()
    selection, _ = Selection.from_query({"batch": batch.code, "step": "stacking", "since": since})

    report = yield_report(selection, by="step")

    assert [_figures(row) for row in report.rows] == [("stacking", 9, 8, 1, 0, 1)]
    assert report.rty == pytest.approx(8 / 9)


def test_an_empty_selection_has_no_rows_and_no_rty(plant):
    selection, _ = Selection.from_query({"line": "yokohama"})
    report = yield_report(selection, by="batch")
    assert report.rows == [] and report.steps == []
    assert report.rty is None
    assert _figures(report.total) == ("total", 0, 0, 0, 0, 0)
    assert report.total.fpy is None


# ---------------------------------------------------------------- GET /api/v1/yield


def test_the_api_answers_the_contract(made, api_as, operator, django_assert_max_num_queries):
    batch, _, _ = made
    client = api_as(operator)
    # The token and the user's permissions, the batch filter, then the two figures' queries.
    with django_assert_max_num_queries(6):
        response = client.get("/api/v1/yield", {"batch": batch.code, "by": "step"})
    assert response.status_code == 200
    body = response.json()
    assert body["by"] == "step"
    assert body["rows"][1] == {
        "key": "pressing",
        "started": 9,
        "first_pass": 7,
        "failed": 2,
        "reworked": 2,
        "scrapped": 0,
        "fpy": pytest.approx(7 / 9),
        "scrap_rate": 0.0,
        "rework_rate": pytest.approx(2 / 9),
    }
    assert [row["key"] for row in body["rows"]] == ["stacking", "pressing", "formation"]
    assert body["rty"] == pytest.approx(0.8 * 7 / 9 * 8 / 9)
    assert body["total"]["started"] == 10 and body["total"]["scrapped"] == 2

    by_day = client.get("/api/v1/yield", {"line": "proto", "by": "day"}).json()
    assert [(row["key"], row["started"]) for row in by_day["rows"]] == [
        (made[2].isoformat(), 10),
        ((made[2] + timedelta(days=1)).isoformat(), 2),
    ]


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        ({"by": "shift"}, {"by"}),
        ({"by": "week", "line": "nowhere"}, {"by", "line"}),
        ({"step": "baking"}, {"step"}),
        ({"since": "yesterday"}, {"since"}),
        ({"recipe_version": "0"}, {"recipe_version"}),
        ({"since": "0001-01-01T00:00:00+01:00"}, {"since"}),  # before year 1 in UTC
    ],
)
def test_bad_filters_are_400_invalid_with_the_fields(plant, api_as, operator, query, fields):
    response = api_as(operator).get("/api/v1/yield", query)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert set(body["errors"]) == fields


def test_an_offset_postgresql_would_refuse_is_taken_in_utc(made, api_as, operator):
    batch, _, day = made
    # 23:59 at -19:41 is past 19:40 the next day in UTC, after every result here.
    until = f"{(day + timedelta(days=1)).isoformat()}T23:59:00-19:41"
    response = api_as(operator).get("/api/v1/yield", {"batch": batch.code, "until": until})
    assert response.status_code == 200
    assert response.json()["total"]["started"] == 10


def test_the_api_needs_a_viewer(plant, api_as, outsider):
    assert api_as(None).get("/api/v1/yield").status_code == 401
    response = api_as(outsider).get("/api/v1/yield")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


# ---------------------------------------------------------------- the yield page


def test_the_yield_page_shows_the_figures_and_keeps_the_filters(
    made, signed_in, operator, django_assert_max_num_queries
):
    batch, _, _ = made
    browser = signed_in(operator)
    with django_assert_max_num_queries(12):
        response = browser.get("/quality/yield/", {"batch": batch.code, "by": "step"})
    assert response.status_code == 200
    page = response.content.decode()
    report = response.context["report"]
    assert [(row.key, row.started, row.first_pass) for row in report.rows] == [
        ("stacking", 10, 8),
        ("pressing", 9, 7),
        ("formation", 9, 8),
    ]
    assert "55.3 %" in page  # RTY: 0.8 * 7/9 * 8/9 = 0.5531
    assert "77.8 %" in page  # pressing's FPY
    assert response.context["chart"] == {
        "labels": ["stacking", "pressing", "formation"],
        "fpy": [80.0, 77.78, 88.89],
    }
    assert f"/api/v1/exports/measurements?format=csv&amp;batch={batch.code}" in page
    assert f"/api/v1/exports/measurements?format=xlsx&amp;batch={batch.code}" in page
    assert f"/quality/pareto/?batch={batch.code}" in page


def test_the_yield_page_lists_batches_for_an_engineer(made, signed_in, quality_engineer):
    batch, other, _ = made
    response = signed_in(quality_engineer).get("/quality/yield/", {"by": "batch"})
    assert response.status_code == 200
    assert [row.key for row in response.context["report"].rows] == [batch.code, other.code]
    assert f'href="/batches/{other.code}/"' in response.content.decode()


def test_bad_filters_on_the_page_are_named_and_nothing_is_computed(plant, signed_in, operator):
    response = signed_in(operator).get("/quality/yield/", {"by": "week", "lot": "NO-SUCH-LOT"})
    assert response.status_code == 200
    assert response.context["report"] is None
    assert set(response.context["errors"]) == {"by", "lot"}
    assert 'id="filter-errors"' in response.content.decode()


def test_the_yield_page_needs_a_viewer(plant, signed_in, outsider):
    assert signed_in(None).get("/quality/yield/").status_code == 302
    assert signed_in(outsider).get("/quality/yield/").status_code == 403


def test_the_line_view_links_to_its_yield(plant, signed_in, operator):
    page = signed_in(operator).get("/lines/proto/").content.decode()
    assert 'href="/quality/yield/?line=proto"' in page


def test_a_cells_first_result_is_the_earliest_whenever_it_arrives(
    proto_batch, stations, record, quality_engineer
):
    """The per cell and step sums (batches.CellStep) follow the results' times, not their
    arrival: a result dated before the others, sent last, becomes the first one."""
    from batches.models import CellStep, ProcessRun

    cell = proto_batch.cells.get(position=1)
    now = timezone.now()
    record(cell, stations["PR-STK-1"], upset="misalignment", occurred_at=now - timedelta(hours=1))
    summed = CellStep.objects.get(cell=cell, step="stacking")
    assert (summed.passes, summed.fails, summed.first_passed) == (0, 1, False)

    # The rework's result dated two hours back (a station clock set wrong): the first result.
    hold = Hold.objects.get(cells=cell, status=Hold.Status.OPEN)
    release_hold(hold, by=quality_engineer, disposition="rework", reason="tested")
    late = record(cell, stations["PR-STK-1"], occurred_at=now - timedelta(hours=2))
    summed.refresh_from_db()
    assert (summed.passes, summed.fails, summed.first_passed) == (1, 1, True)
    assert summed.first_run_id == late.pk
    assert summed.first_at == now - timedelta(hours=2)
    assert ProcessRun.objects.filter(cell=cell).count() == 2
    report = yield_report(Selection(batch=proto_batch))
    assert [(r.key, r.started, r.first_pass, r.reworked) for r in report.rows] == [
        ("stacking", 1, 1, 1)
    ]
