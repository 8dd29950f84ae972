from __future__ import annotations

import pytest

from audit.models import Event
from batches.models import Cell, Hold, HoldRule
from core.errors import DomainError
from quality.services import supersede_hold_rule


def _stack_all(batch, station, record, **kw):
    for cell in batch.cells.all():
        record(cell, station, **kw)


def test_a_short_after_pressing_holds_every_cell_of_the_press_cycle(proto_batch, stations, record):
    _stack_all(proto_batch, stations["PR-STK-1"], record)
    cells = list(proto_batch.cells.order_by("position"))
    for cell in cells[:4]:
        record(cell, stations["PR-PRS-1"], equipment_ref="CIP-LOAD-17")
    for cell in cells[4:6]:
        record(cell, stations["PR-PRS-1"], equipment_ref="CIP-LOAD-18")
    record(cells[6], stations["PR-PRS-1"], equipment_ref="CIP-LOAD-17", upset="short")

    hold = Hold.objects.get(scope="press_cycle")
    assert hold.target == "PR-PRS-1:CIP-LOAD-17" and hold.rule.code == "press_cycle_short"
    assert set(hold.cells.all()) == set(cells[:4]) | {cells[6]}
    assert not Cell.objects.on_hold().filter(pk__in=[c.pk for c in cells[4:6]]).exists()


def test_one_insulation_failure_holds_the_cell_two_hold_the_batch(proto_batch, stations, record):
    cells = list(proto_batch.cells.order_by("position"))
    record(cells[0], stations["PR-STK-1"], upset="insulation")
    assert not Hold.objects.filter(scope="batch").exists()
    record(cells[1], stations["PR-STK-1"], upset="insulation")
    hold = Hold.objects.get(scope="batch")
    assert hold.rule.code == "batch_insulation_failures" and hold.cells.count() == 10
    with pytest.raises(DomainError) as refused:  # the batch hold stops the next cell
        record(cells[2], stations["PR-STK-1"], upset="insulation")
    assert refused.value.code == "on_hold"
    assert Hold.objects.filter(scope="batch").count() == 1


def test_the_insulation_threshold_is_the_rule_versions_parameter(proto_batch, stations, record):
    HoldRule.objects.filter(code="batch_insulation_failures").update(in_force=False)
    HoldRule.objects.create(code="batch_insulation_failures", version=2, parameters={"failures": 3})
    cells = list(proto_batch.cells.order_by("position"))
    record(cells[0], stations["PR-STK-1"], upset="insulation")
    record(cells[1], stations["PR-STK-1"], upset="insulation")
    assert not Hold.objects.filter(scope="batch").exists()
    record(cells[2], stations["PR-STK-1"], upset="insulation")
    assert Hold.objects.get(scope="batch").rule.version == 2


def test_a_hard_short_in_formation_holds_the_batch(proto_batch, stations, record):
    cell = proto_batch.cells.first()
    record(cell, stations["PR-STK-1"])
    record(cell, stations["PR-PRS-1"], equipment_ref="L1")
    record(cell, stations["PR-FRM-1"], defects=["short"])
    hold = Hold.objects.get(scope="batch")
    assert hold.rule.code == "formation_hard_short" and cell.serial in hold.reason


def _form_batch(batch, stations, record, ice_by_position):
    for cell in batch.cells.order_by("position"):
        record(cell, stations["PR-STK-1"])
        record(cell, stations["PR-PRS-1"], equipment_ref="L1")
    for cell in batch.cells.order_by("position"):
        if Cell.objects.on_hold().filter(pk=cell.pk).exists():
            continue  # once the batch is held, formation of the rest is refused
        ice = ice_by_position.get(cell.position, 0.86 + 0.002 * (cell.position % 5))
        record(cell, stations["PR-FRM-1"], measurements={"initial_coulombic_efficiency": ice})


def test_two_cells_with_ice_far_below_the_batch_hold_it(proto_batch, stations, record):
    _form_batch(proto_batch, stations, record, {3: 0.82, 7: 0.815})
    hold = Hold.objects.get(scope="batch", rule__code="formation_ice_outliers")
    assert "0003" in hold.reason and "0007" in hold.reason


def test_one_low_ice_cell_alone_does_not_hold_the_batch(proto_batch, stations, record):
    _form_batch(proto_batch, stations, record, {3: 0.82})
    assert not Hold.objects.filter(rule__code="formation_ice_outliers").exists()


def test_a_retired_rule_does_not_fire(proto_batch, stations, record):
    HoldRule.objects.filter(code="out_of_spec").update(in_force=False)
    cell = proto_batch.cells.first()
    assert record(cell, stations["PR-STK-1"], upset="misalignment").verdict == "fail"
    assert not Hold.objects.exists()


# ---------------------------------------------------------------- new thresholds


def test_new_thresholds_take_effect_as_the_next_version_and_the_old_one_stays(
    proto_batch, stations, record, quality_engineer
):
    cells = list(proto_batch.cells.order_by("position"))
    old = HoldRule.objects.get(code="batch_insulation_failures", in_force=True)
    new = supersede_hold_rule(
        "batch_insulation_failures",
        parameters={"failures": 3},
        by=quality_engineer,
        note="hipot fixture replaced; two failures are noise now",
    )
    old.refresh_from_db()
    assert (new.version, new.in_force, new.parameters) == (old.version + 1, True, {"failures": 3})
    assert (old.in_force, old.parameters) == (False, {"failures": 2})  # retired, unchanged
    trail = Event.objects.get(verb="hold_rule_superseded")
    assert (trail.actor, trail.subject, trail.data["retired"]) == (
        quality_engineer.username,
        "batch_insulation_failures",
        [old.version],
    )
    record(cells[0], stations["PR-STK-1"], upset="insulation")
    record(cells[1], stations["PR-STK-1"], upset="insulation")
    assert not Hold.objects.filter(scope="batch").exists()
    record(cells[2], stations["PR-STK-1"], upset="insulation")
    assert Hold.objects.get(scope="batch").rule == new


@pytest.mark.parametrize(
    ("code", "parameters", "problem"),
    [
        ("batch_insulation_failures", {"failure": 3}, "failure"),  # a name the rule never reads
        ("batch_insulation_failures", {"failures": 2.5}, "failures"),  # a count must be whole
        ("batch_insulation_failures", {"failures": 0}, "failures"),
        ("batch_insulation_failures", {"failures": "3"}, "failures"),
        ("batch_insulation_failures", {"failures": True}, "failures"),
        ("formation_ice_outliers", {"sigma": -1}, "sigma"),
        ("out_of_spec", {"failures": 2}, "failures"),  # a rule without thresholds
    ],
)
def test_thresholds_the_rule_cannot_read_are_refused_and_nothing_changes(
    plant, quality_engineer, code, parameters, problem
):
    before = list(HoldRule.objects.values_list("code", "version", "in_force"))
    with pytest.raises(DomainError) as refused:
        supersede_hold_rule(code, parameters=parameters, by=quality_engineer, note="tuning")
    assert refused.value.code == "invalid" and set(refused.value.errors) == {problem}
    assert list(HoldRule.objects.values_list("code", "version", "in_force")) == before


def test_a_new_version_needs_a_reason_and_a_known_rule(plant, quality_engineer):
    with pytest.raises(DomainError) as refused:
        supersede_hold_rule("out_of_spec", parameters={}, by=quality_engineer, note=" ")
    assert refused.value.code == "reason_required"
    with pytest.raises(DomainError) as refused:
        supersede_hold_rule("moon_phase", parameters={}, by=quality_engineer, note="why not")
    assert refused.value.code == "unknown_rule"
    assert not HoldRule.objects.filter(version__gt=1).exists()


def test_float_thresholds_accept_whole_numbers(plant, quality_engineer):
    new = supersede_hold_rule(
        "formation_ice_outliers",
        parameters={"sigma": 4, "cells": 3},
        by=quality_engineer,
        note="fewer false alarms",
    )
    assert new.parameters == {"sigma": 4.0, "cells": 3}
