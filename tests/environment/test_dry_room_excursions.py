"""Dry-room readings judged by their own time: excursions, and what a long one holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from batches.models import Batch, Hold, HoldRule
from batches.services import create_batch
from environment.models import ExcursionHold, Reading
from lines.models import CellDesign, Excursion, Line, Route, Station

ZONE = "proto-dry-room"  # seed_demo: the prototype line's dry room, holding PR-STK-1
LOTS = {"cathode": "CAT-2611-A-01", "electrolyte": "SE-2611-01"}
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
DRY, WET = -55.0, -30.0  # the zone's dew point limit is max -40


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def dew(seconds: float, value: float, sensor: str = "DP-1") -> dict:
    return {"sensor": sensor, "at": at(seconds).isoformat(), "dew_point_c": value}


def dew_points(start: int, stop: int, value: float, step: int = 10) -> list[dict]:
    """One reading every `step` s from `start` to `stop` inclusive."""
    return [dew(s, value) for s in range(start, stop + 1, step)]


@pytest.fixture
def send(api_as, line_engineer):
    client = api_as(line_engineer)

    def _send(readings: list[dict], zone: str = ZONE):
        return client.post(f"/api/v1/env/{zone}/readings", {"readings": readings}, format="json")

    return _send


@pytest.fixture
def stacker(stations) -> Station:
    return stations["PR-STK-1"]


@pytest.fixture
def yokohama_batch(plant, line_engineer) -> Batch:
    line = Line.objects.get(code="yokohama")
    return create_batch(
        line=line,
        design=CellDesign.objects.get(code="SSB-20AH-Y1"),
        route=Route.objects.get(line=line, code="pilot"),
        quantity=2,
        by=line_engineer,
    )


def excursions() -> list[tuple]:
    return list(
        Excursion.objects.order_by("started_at").values_list(
            "quantity", "bound", "started_at", "last_beyond_at", "ended_at", "peak"
        )
    )


def excursion_holds() -> list[Hold]:
    return list(Hold.objects.filter(rule__code="dry_room_excursion").order_by("scope", "target"))


def test_readings_are_stored_and_a_long_excursion_recorded(send):
    readings = [
        *dew_points(0, 190, DRY),
        *dew_points(200, 320, WET),
        dew(250, -28.5),  # a second reading at 250 s from the same sensor: a repeat, not stored
        *dew_points(330, 400, DRY),
    ]
    readings[25]["dew_point_c"] = -31.0  # 250 s
    response = send(readings)
    assert response.status_code == 202, response.content
    assert response.json() == {"accepted": 41, "duplicates": 1, "excursions": 1}
    assert Reading.objects.filter(zone__code=ZONE).count() == 41
    assert Reading.objects.get(sensor="DP-1", at=at(250)).dew_point_c == -31.0
    # Beyond -40 from 200 s to 320 s, back within at 330 s; the worst reading -30.
    assert excursions() == [("dew_point_c", "max", at(200), at(320), at(330), -30.0)]
    assert Excursion.objects.get().counted_at is not None


def test_late_and_out_of_order_readings_form_the_same_excursion(send):
    # Within first, then the crossing in two requests, newest first, each in reverse order.
    assert send(dew_points(0, 190, DRY) + dew_points(330, 400, DRY)).status_code == 202
    assert send(dew_points(260, 320, WET)[::-1]).status_code == 202
    # So far 260-320 s beyond: 70 s until the reading back within at 330 s, which counts.
    assert excursions() == [("dew_point_c", "max", at(260), at(320), at(330), -30.0)]
    late = dew_points(200, 250, WET)[::-1]
    late[2]["dew_point_c"] = -25.0  # 230 s, the peak
    assert send(late).json()["excursions"] == 1
    assert excursions() == [("dew_point_c", "max", at(200), at(320), at(330), -25.0)]
    assert Excursion.objects.count() == 1


def test_each_run_beyond_the_limit_is_judged_on_its_own(send, proto_batch, stacker, record):
    record(proto_batch.cells.first(), stacker, occurred_at=at(265))
    # 200-230 s beyond, 240 s within, 250-280 s beyond, 290 s within: two runs of 40 s each.
    send(dew_points(0, 190, DRY) + dew_points(200, 230, WET) + [dew(240, DRY)])
    send(dew_points(250, 280, WET) + dew_points(290, 300, DRY))
    assert [e[2:5] for e in excursions()] == [
        (at(200), at(230), at(240)),
        (at(250), at(280), at(290)),
    ]
    assert excursion_holds() == []


def test_a_short_excursion_holds_nothing(send, proto_batch, stacker, record):
    cell = proto_batch.cells.order_by("position").first()
    record(cell, stacker, occurred_at=at(230), material_lots=LOTS)
    # 200-250 s beyond, within at 260 s: 60 s, no longer than the 60 s tolerated.
    send(dew_points(0, 190, DRY) + dew_points(200, 250, WET) + dew_points(260, 300, DRY))
    assert excursions() == [("dew_point_c", "max", at(200), at(250), at(260), -30.0)]
    assert Excursion.objects.get().counted_at is None
    assert excursion_holds() == []
    assert not Hold.objects.exists()


def test_a_long_excursion_holds_the_cells_stacked_during_it_and_the_open_lots(
    send, proto_batch, yokohama_batch, stacker, stations, record
):
    before, during, during_started, after, *_ = proto_batch.cells.order_by("position")
    record(before, stacker, occurred_at=at(100), material_lots=LOTS)
    record(during, stacker, occurred_at=at(250), material_lots=LOTS)
    # Started before the excursion, finished after it began: it ran during it.
    record(during_started, stacker, occurred_at=at(205), started_at=at(150))
    record(after, stacker, occurred_at=at(400), material_lots=LOTS)
    # Pressed during the excursion, but the press is not in the dry room.
    record(before, stations["PR-PRS-1"], occurred_at=at(260))
    # Stacked during it in the other line's dry room.
    elsewhere = yokohama_batch.cells.order_by("position").first()
    record(elsewhere, stations["YK-STK-1"], occurred_at=at(250))

    send(dew_points(0, 190, DRY) + dew_points(200, 320, WET) + dew_points(330, 420, DRY))

    excursion = Excursion.objects.get()
    cells_hold = Hold.objects.get(scope=Hold.Scope.EXCURSION)
    assert cells_hold.target == f"{ZONE}-X{excursion.pk}"
    assert {c.serial for c in cells_hold.cells.all()} == {during.serial, during_started.serial}
    # The two lots the stacker consumed, open in the room (first used there at 100 s, still
    # released); each holds the cells that consumed it since the excursion began.
    lot_holds = Hold.objects.filter(scope=Hold.Scope.LOT).order_by("target")
    assert [h.target for h in lot_holds] == ["CAT-2611-A-01", "SE-2611-01"]
    for hold in lot_holds:
        assert {c.serial for c in hold.cells.all()} == {during.serial, after.serial}
        assert hold.rule.code == "dry_room_excursion"
    assert set(
        ExcursionHold.objects.filter(excursion=excursion).values_list("hold_id", flat=True)
    ) == {cells_hold.pk, *(h.pk for h in lot_holds)}
    held = {c.serial for h in Hold.objects.all() for c in h.cells.all()}
    assert before.serial not in held and elsewhere.serial not in held

    # Judging the same readings again holds nothing more.
    assert send(dew_points(200, 320, WET)).json() == {
        "accepted": 0,
        "duplicates": 13,
        "excursions": 0,
    }
    assert Hold.objects.count() == 3


def test_a_late_excursion_holds_cells_whose_results_came_first(send, proto_batch, stacker, record):
    first, second, *_ = proto_batch.cells.order_by("position")
    record(first, stacker, occurred_at=at(265))
    record(second, stacker, occurred_at=at(500))
    send(dew_points(0, 190, DRY) + dew_points(200, 210, WET))
    assert Excursion.objects.get().counted_at is None  # 10 s beyond so far
    assert excursion_holds() == []
    # The sensor's buffered readings of 220-290 s arrive late: beyond from 200 s to 290 s.
    send(dew_points(220, 280, WET) + [dew(290, DRY)])
    assert excursions() == [("dew_point_c", "max", at(200), at(280), at(290), -30.0)]
    hold = Hold.objects.get(scope=Hold.Scope.EXCURSION)
    assert [c.serial for c in hold.cells.all()] == [first.serial]


def test_a_result_during_a_counted_excursion_still_going_on_joins_its_hold(
    send, proto_batch, stacker, record
):
    first, second, third, *_ = proto_batch.cells.order_by("position")
    record(first, stacker, occurred_at=at(210))
    send(dew_points(0, 190, DRY) + dew_points(200, 300, WET))  # 100 s beyond, still beyond
    hold = Hold.objects.get(scope=Hold.Scope.EXCURSION)
    assert [c.serial for c in hold.cells.all()] == [first.serial]
    # Its result arrives while the room is wet; the lots it consumed were open in it then.
    record(second, stacker, occurred_at=at(310), material_lots=LOTS)
    send([dew(320, DRY)])  # the room is dry again at 320 s
    record(third, stacker, occurred_at=at(400))  # after the excursion ended
    assert {c.serial for c in hold.cells.all()} == {first.serial, second.serial}
    lot_holds = Hold.objects.filter(scope=Hold.Scope.LOT).order_by("target")
    assert [h.target for h in lot_holds] == ["CAT-2611-A-01", "SE-2611-01"]
    assert all([c.serial for c in h.cells.all()] == [second.serial] for h in lot_holds)


def test_a_second_sensor_judges_apart(send):
    send(
        dew_points(0, 190, DRY)
        + [dew(s, WET, sensor="DP-2") for s in range(200, 330, 10)]
        + dew_points(200, 330, DRY)
    )
    assert Excursion.objects.get().sensor == "DP-2"


def test_a_retired_rule_records_excursions_and_holds_nothing(send, proto_batch, stacker, record):
    HoldRule.objects.filter(code="dry_room_excursion").update(in_force=False)
    record(proto_batch.cells.first(), stacker, occurred_at=at(250))
    send(dew_points(0, 190, DRY) + dew_points(200, 320, WET) + dew_points(330, 340, DRY))
    assert Excursion.objects.get().counted_at is not None
    assert not Hold.objects.exists()


def test_once_the_count_is_committed_the_excursion_gathers_what_it_missed(
    send, proto_batch, stacker, record, django_capture_on_commit_callbacks
):
    from environment.judging import gather_again

    first, second, *_ = proto_batch.cells.order_by("position")
    record(first, stacker, occurred_at=at(250))
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        send(dew_points(0, 190, DRY) + dew_points(200, 320, WET) + dew_points(330, 340, DRY))
    assert len(callbacks) == 1  # the gathering again, after the commit
    hold = Hold.objects.get(scope=Hold.Scope.EXCURSION)
    assert [c.serial for c in hold.cells.all()] == [first.serial]
    # A step applied while the count was being committed saw no counted excursion, and the
    # count's own gathering did not see its run: as if so, the run is there, not in the hold.
    run = record(second, stacker, occurred_at=at(300))
    hold.cells.remove(second)
    gather_again([Excursion.objects.get().pk])
    assert {c.serial for c in hold.cells.all()} == {first.serial, second.serial}
    assert run.cell == second
