from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import Event
from batches.models import Cell
from batches.services import check_track_in, rework_cell, scrap_cell
from core.errors import DomainError
from lines.models import RouteStep


@pytest.fixture
def first_cell(proto_batch) -> Cell:
    return proto_batch.cells.get(position=1)


def test_a_passed_step_moves_the_cell_to_its_next_step(first_cell, stations, record):
    run = record(first_cell, stations["PR-STK-1"])
    first_cell.refresh_from_db()
    assert run.verdict == "pass"
    assert first_cell.status == Cell.Status.IN_PROCESS
    assert first_cell.next_step.station_kind == "pressing"


def test_a_step_s_measurements_carry_its_cell_station_and_times(first_cell, stations, record):
    occurred = timezone.now() - timedelta(hours=3)
    run = record(first_cell, stations["PR-STK-1"], occurred_at=occurred)
    rows = list(run.measurements.all())
    assert rows and run.finished_at == occurred
    for row in rows:
        assert (row.cell_id, row.station_id, row.finished_at, row.recorded_at) == (
            first_cell.pk,
            stations["PR-STK-1"].pk,
            occurred,
            run.recorded_at,
        )


def test_the_last_step_completes_the_cell(first_cell, stations, record):
    for code in ("PR-STK-1", "PR-PRS-1", "PR-FRM-1"):
        record(first_cell, stations[code], equipment_ref="cycle-7")
    first_cell.refresh_from_db()
    assert first_cell.status == Cell.Status.COMPLETED
    assert first_cell.next_step is None
    assert first_cell.completed_at is not None


def test_a_failed_step_keeps_the_cell_at_that_step_and_holds_it(first_cell, stations, record):
    run = record(first_cell, stations["PR-STK-1"], upset="misalignment")
    first_cell.refresh_from_db()
    assert run.verdict == "fail"
    assert first_cell.next_step.station_kind == "stacking"
    hold = first_cell.holds.get(status="open")
    assert hold.scope == "cell" and hold.run == run and hold.rule.code == "out_of_spec"
    assert "max_offset_x_mm" in hold.reason


@pytest.mark.parametrize(
    "status", [Cell.Status.PLANNED, Cell.Status.IN_PROCESS, Cell.Status.COMPLETED]
)
def test_any_cell_but_a_scrapped_one_can_be_scrapped(first_cell, quality_engineer, status):
    Cell.objects.filter(pk=first_cell.pk).update(
        status=status, next_step=None if status == Cell.Status.COMPLETED else first_cell.next_step
    )
    scrapped = scrap_cell(first_cell, by=quality_engineer, reason="crack found at visual check")
    assert scrapped.status == Cell.Status.SCRAPPED and scrapped.next_step is None
    assert Event.objects.filter(
        subject=first_cell.serial, verb="cell_scrapped", actor="quinn-quality"
    ).exists()


def test_a_scrapped_cell_cannot_be_scrapped_again_or_reworked(
    first_cell, stations, record, quality_engineer
):
    record(first_cell, stations["PR-STK-1"])
    scrap_cell(first_cell, by=quality_engineer, reason="dropped")
    stacking = RouteStep.objects.get(route=first_cell.batch.route, station_kind="stacking")
    for action in (
        lambda: scrap_cell(first_cell, by=quality_engineer, reason="again"),
        lambda: rework_cell(first_cell, step=stacking, by=quality_engineer, reason="again"),
    ):
        with pytest.raises(DomainError) as refused:
            action()
        assert refused.value.code == "invalid_transition"


def test_rework_sends_a_completed_cell_back_to_a_step_it_did(
    first_cell, stations, record, quality_engineer
):
    for code in ("PR-STK-1", "PR-PRS-1", "PR-FRM-1"):
        record(first_cell, stations[code], equipment_ref="cycle-7")
    formation = RouteStep.objects.get(route=first_cell.batch.route, station_kind="formation")
    reworked = rework_cell(
        first_cell, step=formation, by=quality_engineer, reason="re-form after fixture fault"
    )
    assert reworked.status == Cell.Status.IN_PROCESS
    assert reworked.next_step == formation
    assert reworked.completed_at is None


def test_rework_of_a_step_the_cell_never_did_is_refused(
    first_cell, stations, record, quality_engineer
):
    pressing = RouteStep.objects.get(route=first_cell.batch.route, station_kind="pressing")
    with pytest.raises(DomainError) as planned:
        rework_cell(first_cell, step=pressing, by=quality_engineer, reason="?")
    assert planned.value.code == "invalid_transition"
    record(first_cell, stations["PR-STK-1"])
    with pytest.raises(DomainError) as ahead:
        rework_cell(first_cell, step=pressing, by=quality_engineer, reason="skip ahead")
    assert ahead.value.code == "invalid_transition"
    first_cell.refresh_from_db()
    assert first_cell.next_step == pressing


def test_scrap_and_rework_need_a_reason(first_cell, quality_engineer):
    with pytest.raises(DomainError) as refused:
        scrap_cell(first_cell, by=quality_engineer, reason="  ")
    assert refused.value.code == "reason_required"
    first_cell.refresh_from_db()
    assert first_cell.status == Cell.Status.PLANNED


class TestTrackIn:
    def test_a_cell_at_its_next_step_may_be_processed(self, first_cell, stations):
        assert check_track_in(first_cell, stations["PR-STK-1"]).station_kind == "stacking"

    def test_a_cell_not_at_this_step_is_refused(self, first_cell, stations):
        with pytest.raises(DomainError) as refused:
            check_track_in(first_cell, stations["PR-PRS-1"])
        assert refused.value.code == "wrong_step"

    def test_a_cell_of_another_line_is_refused(self, first_cell, stations):
        with pytest.raises(DomainError) as refused:
            check_track_in(first_cell, stations["YK-STK-1"])
        assert refused.value.code == "wrong_station"

    def test_a_station_kind_not_on_the_route_is_refused(self, first_cell, stations):
        with pytest.raises(DomainError) as refused:
            check_track_in(first_cell, stations["PR-AGE-1"])
        assert refused.value.code == "wrong_station"

    def test_a_held_cell_is_refused(self, first_cell, stations, record):
        record(first_cell, stations["PR-STK-1"], upset="insulation")
        with pytest.raises(DomainError) as refused:
            check_track_in(first_cell, stations["PR-STK-1"])
        assert refused.value.code == "on_hold"

    def test_a_scrapped_cell_is_refused(self, first_cell, stations, quality_engineer):
        scrap_cell(first_cell, by=quality_engineer, reason="dropped")
        first_cell.refresh_from_db()
        with pytest.raises(DomainError) as refused:
            check_track_in(first_cell, stations["PR-STK-1"])
        assert refused.value.code == "scrapped"

    def test_a_completed_cell_is_refused(self, first_cell, stations, record):
        for code in ("PR-STK-1", "PR-PRS-1", "PR-FRM-1"):
            record(first_cell, stations[code], equipment_ref="c1")
        first_cell.refresh_from_db()
        with pytest.raises(DomainError) as refused:
            check_track_in(first_cell, stations["PR-FRM-1"])
        assert refused.value.code == "wrong_step"
