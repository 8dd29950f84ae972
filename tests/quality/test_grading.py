from __future__ import annotations

import pytest

from audit.models import Event
from core.errors import DomainError
from quality.grading import create_grading_rule_set, regrade_batch, release_grading_rule_set
from quality.models import CellGrade, GradingRuleSet


def _finish(cell, stations, record, **formation):
    record(cell, stations["PR-STK-1"])
    record(cell, stations["PR-PRS-1"], equipment_ref="L1")
    record(cell, stations["PR-FRM-1"], measurements=formation)
    cell.refresh_from_db()
    return cell


@pytest.mark.parametrize(
    ("capacity", "ice", "grade"),
    [(4.5, 0.86, "A"), (4.3, 0.86, "B"), (4.1, 0.81, "C")],
)
def test_a_cell_finishing_its_route_gets_the_best_grade_it_meets(
    proto_batch, stations, record, capacity, ice, grade
):
    cell = _finish(
        proto_batch.cells.first(),
        stations,
        record,
        first_discharge_capacity_ah=capacity,
        initial_coulombic_efficiency=ice,
    )
    assert cell.grade == grade
    grading = CellGrade.objects.get(cell=cell)
    assert grading.rule_set.version == 1 and grading.rule_set.status == "released"
    assert [r["grade"] for r in grading.reasons] == ["A", "B", "C"][: ["A", "B", "C"].index(grade)]


def test_a_cell_meeting_no_grade_is_ng_with_the_reasons(proto_batch, stations, record):
    cell = _finish(
        proto_batch.cells.first(),
        stations,
        record,
        first_discharge_capacity_ah=4.05,
        initial_coulombic_efficiency=0.805,
    )
    assert cell.grade == "C"
    rule_set = create_grading_rule_set(
        proto_batch.design,
        by="test",
        grades={
            "A": {"first_discharge_capacity_ah": {"min": 4.8}},
        },
        note="A only",
    )
    release_grading_rule_set(rule_set, by="test")
    regrade_batch(proto_batch, rule_set=rule_set, by="test", reason="tighter customer spec")
    cell.refresh_from_db()
    assert cell.grade == "NG"
    latest = cell.gradings.order_by("-id").first()
    assert latest.reasons[0]["missed"][0]["parameter"] == "first_discharge_capacity_ah"


def test_regrading_is_an_explicit_logged_action_that_keeps_history(
    proto_batch, stations, record, quality_engineer
):
    cell = _finish(
        proto_batch.cells.first(),
        stations,
        record,
        first_discharge_capacity_ah=4.3,
        initial_coulombic_efficiency=0.86,
    )
    assert cell.grade == "B"
    new = create_grading_rule_set(
        proto_batch.design,
        by=quality_engineer,
        grades={
            "A": {"first_discharge_capacity_ah": {"min": 4.25}},
            "B": {"first_discharge_capacity_ah": {"min": 4.0}},
        },
        note="capacity binning after customer agreement",
    )
    release_grading_rule_set(new, by=quality_engineer)
    old = GradingRuleSet.objects.get(design=proto_batch.design, version=1)
    assert old.status == "superseded"
    cell.refresh_from_db()
    assert cell.grade == "B"  # releasing a rule set does not silently re-grade

    regrade_batch(proto_batch, rule_set=new, by=quality_engineer, reason="apply v2 binning")

    cell.refresh_from_db()
    assert cell.grade == "A"
    assert list(cell.gradings.order_by("id").values_list("grade", "rule_set__version")) == [
        ("B", 1),
        ("A", 2),
    ]
    event = Event.objects.get(verb="batch_regraded", subject=proto_batch.code)
    assert event.actor == "quinn-quality" and event.reason == "apply v2 binning"


def test_regrading_needs_a_reason_a_released_set_and_the_batchs_design(
    proto_batch, plant, quality_engineer
):
    from lines.models import CellDesign

    draft = create_grading_rule_set(proto_batch.design, by="t", grades={"A": {"x": {"min": 1.0}}})
    other = GradingRuleSet.objects.get(
        design=CellDesign.objects.get(code="SSB-20AH-Y1"), status="released"
    )
    active = GradingRuleSet.objects.get(design=proto_batch.design, status="released")
    for rule_set, reason, code in [
        (active, " ", "reason_required"),
        (draft, "x", "invalid_transition"),
        (other, "x", "invalid"),
    ]:
        with pytest.raises(DomainError) as refused:
            regrade_batch(proto_batch, rule_set=rule_set, by=quality_engineer, reason=reason)
        assert refused.value.code == code
    assert not CellGrade.objects.exists()
