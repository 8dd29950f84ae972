"""The defect Pareto: defect codes and violated parameters counted, most frequent first."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from quality.pareto import pareto
from quality.selection import Selection


@pytest.fixture
def defects(proto_batch, stations, record):
    """Stacking: cell 1 reports misalignment; cell 2 is misaligned out of spec (max_offset_x_mm);
    cell 3 reports edge_burr and misalignment; cell 4 reports edge_burr and its insulation
    resistance is below the minimum. Pressing: cells 5 and 6 under the minimum relative density,
    cell 6 also reporting delamination. The others pass."""
    cells = {cell.position: cell for cell in proto_batch.cells.all()}
    start = timezone.now() - timedelta(hours=2)
    stacking = {
        1: {"defects": ["misalignment"]},
        2: {"defects": ["misalignment"], "measurements": {"max_offset_x_mm": 0.45}},
        3: {"defects": ["edge_burr", "misalignment"]},
        4: {"defects": ["edge_burr"], "measurements": {"insulation_resistance_mohm": 20.0}},
    }
    for position, cell in cells.items():
        record(
            cell,
            stations["PR-STK-1"],
            occurred_at=start + timedelta(minutes=position),
            **stacking.get(position, {"defects": []}),
        )
    pressing = {
        5: {"measurements": {"relative_density_pct": 86.0}},
        6: {"measurements": {"relative_density_pct": 87.5}, "defects": ["delamination"]},
    }
    for position in range(5, 11):
        record(
            cells[position],
            stations["PR-PRS-1"],
            occurred_at=start + timedelta(hours=1, minutes=position),
            **{"defects": [], **pressing.get(position, {})},
        )
    return proto_batch, start


def _rows(rows):
    return [(r.key, r.count, r.share, r.cumulative_share) for r in rows]


def test_pareto_by_defect_code(defects):
    batch, _ = defects
    selection, _ = Selection.from_query({"batch": batch.code})
    assert _rows(pareto(selection, "defect")) == [
        ("misalignment", 3, pytest.approx(3 / 6), pytest.approx(3 / 6)),
        ("edge_burr", 2, pytest.approx(2 / 6), pytest.approx(5 / 6)),
        ("delamination", 1, pytest.approx(1 / 6), pytest.approx(1.0)),
    ]


def test_pareto_by_violated_parameter(defects):
    batch, _ = defects
    selection, _ = Selection.from_query({"batch": batch.code})
    assert _rows(pareto(selection, "parameter")) == [
        ("relative_density_pct", 2, pytest.approx(0.5), pytest.approx(0.5)),
        ("insulation_resistance_mohm", 1, pytest.approx(0.25), pytest.approx(0.75)),
        ("max_offset_x_mm", 1, pytest.approx(0.25), pytest.approx(1.0)),
    ]


def test_pareto_per_step_and_period(defects):
    batch, start = defects
    stacking, _ = Selection.from_query({"batch": batch.code, "step": "stacking"})
    assert [(r.key, r.count) for r in pareto(stacking, "defect")] == [
        ("misalignment", 3),
        ("edge_burr", 2),
    ]
    # The first two stacking results only (cells 1 and 2).
    window, _ = Selection.from_query(
        {
            "since": start.isoformat(),
            "until": (start + timedelta(minutes=2, seconds=30)).isoformat(),
        }
    )
    assert _rows(pareto(window, "defect")) == [("misalignment", 2, 1.0, 1.0)]
    assert _rows(pareto(window, "parameter")) == [("max_offset_x_mm", 1, 1.0, 1.0)]


def test_a_selection_without_defects_has_no_rows(plant):
    selection, _ = Selection.from_query({"line": "yokohama"})
    assert pareto(selection, "defect") == []
    assert pareto(selection, "parameter") == []


# ---------------------------------------------------------------- GET /api/v1/pareto


def test_the_api_lists_the_pareto(defects, api_as, operator, django_assert_max_num_queries):
    batch, _ = defects
    client = api_as(operator)
    with django_assert_max_num_queries(5):
        response = client.get("/api/v1/pareto", {"by": "parameter", "batch": batch.code})
    assert response.status_code == 200
    body = response.json()
    assert body["by"] == "parameter" and body["total"] == 4
    assert body["rows"][0] == {
        "key": "relative_density_pct",
        "count": 2,
        "share": 0.5,
        "cumulative_share": 0.5,
    }
    assert [row["key"] for row in body["rows"]] == [
        "relative_density_pct",
        "insulation_resistance_mohm",
        "max_offset_x_mm",
    ]
    by_defect = client.get("/api/v1/pareto", {"step": "pressing", "batch": batch.code}).json()
    assert by_defect["by"] == "defect"
    assert [(row["key"], row["count"]) for row in by_defect["rows"]] == [("delamination", 1)]


def test_bad_pareto_inputs_are_400_invalid(plant, api_as, operator):
    client = api_as(operator)
    for query, fields in [
        ({"by": "operator"}, {"by"}),
        ({"by": "defect", "batch": "NO-SUCH-BATCH"}, {"batch"}),
        ({"until": "2026-13-01T00:00:00Z"}, {"until"}),
    ]:
        response = client.get("/api/v1/pareto", query)
        assert response.status_code == 400, query
        assert response.json()["code"] == "invalid"
        assert set(response.json()["errors"]) == fields


# ---------------------------------------------------------------- the Pareto page


def test_the_pareto_page_draws_bars_and_the_cumulative_line(
    defects, signed_in, operator, django_assert_max_num_queries
):
    batch, _ = defects
    browser = signed_in(operator)
    with django_assert_max_num_queries(11):
        response = browser.get("/quality/pareto/", {"batch": batch.code, "by": "defect"})
    assert response.status_code == 200
    assert response.context["chart"] == {
        "labels": ["misalignment", "edge_burr", "delamination"],
        "counts": [3, 2, 1],
        "cumulative": [50.0, 83.33, 100.0],
    }
    page = response.content.decode()
    assert 'id="pareto-chart"' in page and 'id="pareto-data"' in page
    assert "6 occurrences" in page


def test_the_pareto_page_refuses_a_bad_grouping_and_needs_a_viewer(
    plant, signed_in, operator, outsider
):
    response = signed_in(operator).get("/quality/pareto/", {"by": "operator"})
    assert response.status_code == 200
    assert response.context["rows"] is None
    assert set(response.context["errors"]) == {"by"}
    response = signed_in(outsider).get("/quality/pareto/")
    assert response.status_code == 403
    assert signed_in(None).get("/quality/pareto/").status_code == 302
