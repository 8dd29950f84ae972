from __future__ import annotations

import pytest
from django.db import IntegrityError

from audit.models import Event
from batches.models import Cell, Hold, MaterialLot
from batches.services import hold_batch, hold_cell, hold_lot, release_hold
from core.errors import DomainError


def test_a_batch_hold_covers_every_cell_and_records_who_and_why(proto_batch, line_engineer):
    hold = hold_batch(proto_batch, by=line_engineer, reason="dew point excursion in dry room 2")
    assert hold.status == "open" and hold.opened_by == line_engineer and hold.rule is None
    assert hold.cells.count() == 10
    assert Cell.objects.on_hold().count() == 10
    event = Event.objects.get(verb="hold_opened", subject=proto_batch.code)
    assert (
        event.actor == "lena-line-engineer" and event.reason == "dew point excursion in dry room 2"
    )


def test_a_hold_needs_a_reason(proto_batch, line_engineer):
    with pytest.raises(DomainError) as refused:
        hold_batch(proto_batch, by=line_engineer, reason="")
    assert refused.value.code == "reason_required"
    assert not Hold.objects.exists()


@pytest.mark.parametrize("disposition", Hold.Disposition.values)
def test_an_open_hold_closes_with_each_disposition(
    proto_batch, stations, record, line_engineer, quality_engineer, disposition
):
    cells = list(proto_batch.cells.all()[:3])
    for cell in cells:
        record(cell, stations["PR-STK-1"])
    hold = hold_batch(proto_batch, by=line_engineer, reason="SE lot suspect")
    closed = release_hold(hold, by=quality_engineer, disposition=disposition, reason="reviewed")
    assert closed.status == "closed" and closed.disposition == disposition
    assert closed.closed_by == quality_engineer and closed.closed_at is not None
    assert not Cell.objects.on_hold().exists()
    statuses = {c.status for c in Cell.objects.filter(pk__in=[c.pk for c in cells])}
    next_steps = {
        c.next_step.station_kind if c.next_step else None
        for c in Cell.objects.filter(pk__in=[c.pk for c in cells])
    }
    if disposition == "scrap":
        assert statuses == {Cell.Status.SCRAPPED}
        assert Cell.objects.filter(batch=proto_batch, status=Cell.Status.SCRAPPED).count() == 10
    elif disposition == "rework":
        # Each cell re-runs the last step it ran.
        assert next_steps == {"stacking"}
    else:
        assert next_steps == {"pressing"}


def test_a_closed_hold_cannot_be_closed_again(proto_batch, line_engineer, quality_engineer):
    hold = release_hold(
        hold_batch(proto_batch, by=line_engineer, reason="x"),
        by=quality_engineer,
        disposition="release",
        reason="ok",
    )
    with pytest.raises(DomainError) as refused:
        release_hold(hold, by=quality_engineer, disposition="scrap", reason="changed mind")
    assert refused.value.code == "invalid_transition"
    hold.refresh_from_db()
    assert hold.disposition == "release"
    assert not Cell.objects.filter(status=Cell.Status.SCRAPPED).exists()


def test_an_unknown_disposition_is_refused(proto_batch, line_engineer, quality_engineer):
    hold = hold_batch(proto_batch, by=line_engineer, reason="x")
    with pytest.raises(DomainError) as refused:
        release_hold(hold, by=quality_engineer, disposition="ignore", reason="?")
    assert refused.value.code == "invalid"
    hold.refresh_from_db()
    assert hold.status == "open"


def test_releasing_an_out_of_spec_hold_accepts_the_deviation(
    proto_batch, stations, record, quality_engineer
):
    cell = proto_batch.cells.get(position=1)
    record(cell, stations["PR-STK-1"], upset="misalignment")
    hold = cell.holds.get()
    release_hold(
        hold, by=quality_engineer, disposition="release", reason="offset 0.35 mm accepted by MRB"
    )
    cell.refresh_from_db()
    assert cell.next_step.station_kind == "pressing"
    assert Event.objects.filter(subject=cell.serial, verb="deviation_accepted").exists()


def test_reworking_an_out_of_spec_hold_re_runs_the_failed_step(
    proto_batch, stations, record, quality_engineer
):
    cell = proto_batch.cells.get(position=1)
    record(cell, stations["PR-STK-1"], upset="misalignment")
    release_hold(cell.holds.get(), by=quality_engineer, disposition="rework", reason="re-stack")
    cell.refresh_from_db()
    assert cell.next_step.station_kind == "stacking"
    assert record(cell, stations["PR-STK-1"]).verdict == "pass"


def test_releasing_a_batch_hold_does_not_accept_a_cells_own_failure(
    proto_batch, stations, record, line_engineer, quality_engineer
):
    failed = proto_batch.cells.get(position=1)
    record(failed, stations["PR-STK-1"], upset="misalignment")
    batch_hold = hold_batch(proto_batch, by=line_engineer, reason="audit")
    release_hold(batch_hold, by=quality_engineer, disposition="release", reason="audit done")
    failed.refresh_from_db()
    assert failed.next_step.station_kind == "stacking"
    assert Cell.objects.on_hold().get() == failed


def test_a_lot_hold_covers_every_cell_that_consumed_it_and_later_consumers(
    proto_batch, stations, record, line_engineer
):
    lots = {"cathode": "CAT-2611-A-01", "electrolyte": "SE-2611-02"}
    first, second, other = proto_batch.cells.all()[:3]
    record(first, stations["PR-STK-1"], material_lots=lots)
    record(other, stations["PR-STK-1"], material_lots={"electrolyte": "SE-2611-01"})
    hold = hold_lot(
        MaterialLot.objects.get(code="SE-2611-02"),
        by=line_engineer,
        reason="incoming inspection: ionic conductivity low",
    )
    assert set(hold.cells.all()) == {first}
    record(second, stations["PR-STK-1"], material_lots=lots)
    assert set(hold.cells.all()) == {first, second}
    assert not Cell.objects.on_hold().filter(pk=other.pk).exists()


def test_a_rule_opens_one_hold_per_target_while_it_is_open(proto_batch, stations, record):
    from batches.models import HoldRule

    rule = HoldRule.objects.get(code="formation_hard_short")
    cell = proto_batch.cells.first()
    hold_cell(cell, by=rule.label, reason="first", rule=rule)
    with pytest.raises(IntegrityError):
        hold_cell(cell, by=rule.label, reason="second", rule=rule)
