from __future__ import annotations

import pytest

from batches.models import Cell, Hold, HoldRule
from mes.errors import DomainError


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
    HoldRule.objects.filter(code="batch_insulation_failures").update(active=False)
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


def test_an_inactive_rule_does_not_fire(proto_batch, stations, record):
    HoldRule.objects.filter(code="out_of_spec").update(active=False)
    cell = proto_batch.cells.first()
    assert record(cell, stations["PR-STK-1"], upset="misalignment").verdict == "fail"
    assert not Hold.objects.exists()
