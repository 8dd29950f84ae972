"""The spc_signal hold rule: a signal on a parameter marked to hold holds the cell; on one marked
only to flag it holds nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from batches.models import Hold, HoldRule
from lines.models import Line
from quality.services import supersede_hold_rule
from quality.spc.services import freeze_baseline, set_spc_setting

# Steady pressing: peak pressure and dwell close to their targets.
STEADY = [(498.0, 300.0), (502.0, 304.0), (500.0, 298.0), (501.0, 302.0), (499.0, 300.0)]


@pytest.fixture
def steady(proto_batch, stations, record, quality_engineer):
    """Every cell stacked; the first five pressed steadily and frozen as the baseline of both
    parameters; peak pressure marked to hold on rule 1, dwell only to flag on rule 1."""
    line = Line.objects.get(code="proto")
    start = timezone.now() - timedelta(hours=2)
    cells = list(proto_batch.cells.order_by("position"))
    for i, cell in enumerate(cells):
        record(cell, stations["PR-STK-1"], occurred_at=start + timedelta(minutes=i))
    for i, (peak, dwell) in enumerate(STEADY):
        record(
            cells[i],
            stations["PR-PRS-1"],
            measurements={"peak_pressure_mpa": peak, "dwell_s": dwell},
            occurred_at=start + timedelta(hours=1, minutes=i),
        )
    for parameter in ("peak_pressure_mpa", "dwell_s"):
        freeze_baseline(
            line=line,
            step="pressing",
            parameter=parameter,
            chart="imr",
            since=start,
            until=start + timedelta(hours=1, minutes=10),
            by=quality_engineer,
            note="steady after commissioning",
        )
    key = dict(line=line, step="pressing", by=quality_engineer, note="key characteristic")
    set_spc_setting(parameter="peak_pressure_mpa", rules=[1], hold=True, **key)
    set_spc_setting(parameter="dwell_s", rules=[1], hold=False, **key)
    return cells, start


def _press(record, stations, cell, start, minute, peak, dwell):
    record(
        cell,
        stations["PR-PRS-1"],
        measurements={"peak_pressure_mpa": peak, "dwell_s": dwell},
        occurred_at=start + timedelta(hours=1, minutes=minute),
    )


def test_a_signal_on_a_parameter_marked_to_hold_holds_the_cell(steady, record, stations):
    cells, start = steady
    # baseline: mean 500, moving ranges 4, 2, 1, 2 -> sigma 2.25 / 1.128, UCL about 506
    _press(record, stations, cells[5], start, 6, 560.0, 301.0)  # in spec (375-700), beyond 3 sigma
    hold = Hold.objects.get(rule__code="spc_signal")
    assert (hold.scope, hold.target, hold.status) == ("cell", cells[5].serial, "open")
    assert hold.reason.startswith("SPC signal on peak_pressure_mpa: Nelson rule 1 (560 against")
    assert "baseline v1" in hold.reason
    assert hold.run.cell == cells[5]
    assert list(hold.cells.all()) == [cells[5]]
    assert not Hold.objects.filter(rule__code="out_of_spec").exists()


def test_a_signal_on_a_parameter_only_flagged_holds_nothing(
    steady, record, stations, api_as, operator
):
    cells, start = steady
    _press(record, stations, cells[5], start, 6, 501.0, 400.0)  # dwell far beyond its limits
    assert not Hold.objects.filter(rule__code="spc_signal").exists()
    body = (
        api_as(operator)
        .get("/api/v1/spc", {"line": "proto", "step": "pressing", "parameter": "dwell_s"})
        .json()
    )
    assert body["points"][-1]["signals"] == [1] and body["hold"] is False  # flagged on the chart


def test_a_rule_not_chosen_for_the_parameter_holds_nothing(
    steady, record, stations, api_as, operator
):
    cells, start = steady
    # four of five beyond 1 sigma (503 > 500 + 2.25 / 1.128) is rule 6, which peak pressure does
    # not judge; none is beyond 3 sigma (506)
    for i, cell in enumerate(cells[5:]):
        _press(record, stations, cell, start, 6 + i, 503.0, 300.0)
    assert not Hold.objects.filter(rule__code="spc_signal").exists()
    query = {"line": "proto", "step": "pressing", "parameter": "peak_pressure_mpa", "rules": "6"}
    body = api_as(operator).get("/api/v1/spc", query).json()
    assert [p["signals"] for p in body["points"][5:]] == [[], [], [], [6], [6]]


def test_without_a_baseline_the_recent_window_judges_from_min_points_on(
    proto_batch, stations, record, quality_engineer
):
    line = Line.objects.get(code="proto")
    set_spc_setting(
        line=line, step="pressing", parameter="peak_pressure_mpa", rules=[1], hold=True,
        by=quality_engineer, note="key",
    )  # fmt: skip
    supersede_hold_rule(
        "spc_signal", parameters={"min_points": 9, "window": 50}, by=quality_engineer, note="short"
    )
    start = timezone.now() - timedelta(hours=2)
    cells = list(proto_batch.cells.order_by("position"))
    for i, cell in enumerate(cells):
        record(cell, stations["PR-STK-1"], occurred_at=start + timedelta(minutes=i))
    # 530 as the 8th point is beyond 3 sigma of the eight (mean 504.1, sigma 36/7/1.128 = 4.6)
    # but too few points to judge; 650 as the 10th is beyond those of all ten (mean 518.3,
    # moving ranges 1 x 6, 30, 30, 150: sigma 24/1.128 = 21.3, UCL 582.1).
    peaks = [500.0, 501.0, 500.0, 501.0, 500.0, 501.0, 500.0, 530.0, 500.0, 650.0]
    for i, peak in enumerate(peaks):
        record(
            cells[i],
            stations["PR-PRS-1"],
            measurements={"peak_pressure_mpa": peak},
            occurred_at=start + timedelta(hours=1, minutes=i),
        )
    held = list(Hold.objects.filter(rule__code="spc_signal").values_list("target", flat=True))
    assert held == [cells[9].serial]
    reason = Hold.objects.get(rule__code="spc_signal").reason
    assert "against last 10 points" in reason
    assert HoldRule.objects.get(code="spc_signal", in_force=True).version == 2


def test_the_hold_rules_list_names_spc_signal(plant, api_as, operator):
    rules = api_as(operator).get("/api/v1/hold-rules").json()["results"]
    spc = next(r for r in rules if r["code"] == "spc_signal")
    assert spc["active"] and spc["parameters"] == {"window": 50, "min_points": 20}


def test_applies_reads_the_held_parameters_once_per_chunk(
    proto_batch, stations, quality_engineer, django_assert_num_queries
):
    from batches.hooks import StepApplied
    from batches.models import ProcessRun
    from batches.services import StepContext
    from quality.rules.registry import RULES

    line = Line.objects.get(code="proto")
    cell = proto_batch.cells.order_by("position").first()
    context = StepContext([cell])
    steps = {s.station_kind: s for s in context.route_steps(proto_batch.route_id)}

    def step_at(code: str) -> StepApplied:
        station = stations[code]
        run = ProcessRun(
            cell=cell, step=steps[station.kind], station=station, finished_at=timezone.now()
        )
        return StepApplied(run, {}, context)

    set_spc_setting(
        line=line, step="pressing", parameter="peak_pressure_mpa", rules=[1], hold=True,
        by=quality_engineer, note="key",
    )  # fmt: skip
    with django_assert_num_queries(1):
        assert RULES["spc_signal"].applies(step_at("PR-PRS-1"))
    with django_assert_num_queries(0):
        assert RULES["spc_signal"].applies(step_at("PR-PRS-1"))
        assert not RULES["spc_signal"].applies(step_at("PR-STK-1"))
