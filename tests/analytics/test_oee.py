"""OEE of a station worked out by hand over two days of the default calendar (Mon-Fri 08:00-17:00
Tokyo, lunch 12:00-13:00): stops across the break and across the end of a shift, a state sent
late landing in its place, reasons corrected afterwards, ideal cycle times set and reset."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from analytics.oee import read_window, today_oee
from audit.models import Event
from batches.models import ProcessRun
from batches.services import create_batch
from lines.models import (
    CellDesign,
    IdealCycleTime,
    Line,
    Route,
    Station,
    StationStateChange,
    StopReasonCorrection,
)
from lines.performance import correct_stop_reason, set_ideal_cycle_time

TOKYO = ZoneInfo("Asia/Tokyo")
STATE_URL = "/api/v1/station/state"


def tokyo(*args) -> datetime:
    return datetime(*args, tzinfo=TOKYO)


# Tuesday 2026-11-24 and Wednesday 25 (Monday 23 is a public holiday). The window: Tuesday 00:00
# to Wednesday 12:00. Planned: Tuesday 8 h + Wednesday 08:00-12:00 4 h = 12 h.
SINCE, UNTIL = tokyo(2026, 11, 24), tokyo(2026, 11, 25, 12)
PLANNED_S = 12 * 3600
# Running in planned time: Tue 08:00-10:00, 10:30-11:30, 13:30-14:00, 14:20-16:30; Wed 08:30-12:00.
RUN_S = 7200 + 3600 + 1800 + 7800 + 12600  # 33000
# Stopped in planned time: 10:00-10:30 down; 11:30-13:30 down less the break (1 h); 14:00-14:20
# down (sent late); 16:30 to Wed 08:30 maintenance: 16:30-17:00 and 08:00-08:30 (1 h).
DOWN_S = 1800 + 3600 + 1200 + 3600  # 10200


def _post_states(client, states):
    for at, state, extra in states:
        response = client.post_json(
            STATE_URL, {"state": state, "occurred_at": at.isoformat(), **extra}
        )
        assert response.status_code == 202, response.content


@pytest.fixture
def worked_two_days(plant, station_client, record, line_engineer):
    """PR-PRS-1's states and eleven pressing results (ten in the window, two failing)."""
    press = station_client("PR-PRS-1")
    _post_states(
        press,
        [
            (tokyo(2026, 11, 23, 20), "idle", {}),
            (tokyo(2026, 11, 24, 8), "running", {}),
            (tokyo(2026, 11, 24, 10), "down", {"reason": "jam"}),
            (tokyo(2026, 11, 24, 10, 30), "running", {}),
            (
                tokyo(2026, 11, 24, 11, 30),
                "down",
                {"reason": "waiting for cathode sheets", "reason_code": "material_wait"},
            ),
            (tokyo(2026, 11, 24, 13, 30), "running", {}),
            (tokyo(2026, 11, 24, 16, 30), "maintenance", {"reason": "changeover"}),
            (tokyo(2026, 11, 25, 8, 30), "running", {}),
            # Sent late, after Wednesday's: they land on Tuesday afternoon.
            (tokyo(2026, 11, 24, 14), "down", {}),
            (tokyo(2026, 11, 24, 14, 20), "running", {}),
        ],
    )
    line = Line.objects.get(code="proto")
    batch = create_batch(
        line=line,
        design=CellDesign.objects.get(code="SSB-5AH-P1"),
        route=Route.objects.get(line=line, code="std"),
        quantity=11,
        by=line_engineer,
    )
    stacker, pressing = Station.objects.get(code="PR-STK-1"), Station.objects.get(code="PR-PRS-1")
    cells = list(batch.cells.order_by("serial"))
    # Eight results on Tuesday, two on Wednesday morning, one after the window (12:30).
    times = [tokyo(2026, 11, 24, 9 + i) for i in range(8)] + [
        tokyo(2026, 11, 25, 9),
        tokyo(2026, 11, 25, 10),
        tokyo(2026, 11, 25, 12, 30),
    ]
    for i, (cell, at) in enumerate(zip(cells, times, strict=True)):
        record(cell, stacker, occurred_at=tokyo(2026, 11, 24, 7))
        cell.refresh_from_db()
        # Two of the window's results fail (the second and the ninth).
        record(cell, pressing, occurred_at=at, verdict="fail" if i in (1, 8) else "")
    version = ProcessRun.objects.filter(station=pressing).first().recipe_version
    set_ideal_cycle_time(version, ideal_cycle_s=1000, by=line_engineer)
    set_ideal_cycle_time(version, ideal_cycle_s=2640, by=line_engineer)  # the latest wins
    return pressing


def _change_at(station, at):
    return StationStateChange.objects.get(station=station, occurred_at=at)


def test_a_state_sent_late_lands_in_place_and_leaves_the_current_state(worked_two_days):
    press = worked_two_days
    press.refresh_from_db()
    assert (press.state, press.state_since) == ("running", tokyo(2026, 11, 25, 8, 30))
    history = list(
        StationStateChange.objects.filter(station=press)
        .order_by("occurred_at")
        .values_list("occurred_at", "state")
    )
    assert history[5:8] == [
        (tokyo(2026, 11, 24, 13, 30), "running"),
        (tokyo(2026, 11, 24, 14), "down"),
        (tokyo(2026, 11, 24, 14, 20), "running"),
    ]
    jam = _change_at(press, tokyo(2026, 11, 24, 10))
    assert (jam.reason, jam.downtime_reason.code) == ("jam", "jam")
    wait = _change_at(press, tokyo(2026, 11, 24, 11, 30))
    assert (wait.reason, wait.downtime_reason.code) == (
        "waiting for cathode sheets",
        "material_wait",
    )


def test_oee_by_hand_with_reasons_corrected_afterwards(
    worked_two_days, api_as, operator, line_engineer
):
    press = worked_two_days
    jam = _change_at(press, tokyo(2026, 11, 24, 10))
    correct_stop_reason(jam, reason_code="changeover", by=line_engineer)
    correct_stop_reason(jam, reason_code="no_operator", by=line_engineer, note="Operator at lunch")
    late = _change_at(press, tokyo(2026, 11, 24, 14))
    correct_stop_reason(late, reason_code="jam", by=line_engineer)

    body = api_as(operator).get(
        "/api/v1/oee",
        {"station": "PR-PRS-1", "since": SINCE.isoformat(), "until": UNTIL.isoformat()},
    )
    assert body.status_code == 200, body.content
    oee = body.json()
    availability = 33000 / 43200
    performance = 10 * 2640 / 33000  # 0.8
    quality = 8 / 10
    assert (oee["planned_s"], oee["run_s"], oee["down_s"]) == (PLANNED_S, RUN_S, DOWN_S)
    assert (oee["total"], oee["good"]) == (10, 8)
    assert oee["availability"] == pytest.approx(availability)
    assert oee["performance"] == pytest.approx(0.8) == pytest.approx(performance)
    assert oee["quality"] == pytest.approx(quality)
    assert oee["oee"] == pytest.approx(availability * 0.8 * 0.8)
    assert oee["ideal_cycle_s"] == pytest.approx(2640)
    # Three failures (the maintenance is planned): 10:00, 11:30, 14:00.
    assert oee["failures"] == 3
    assert oee["mtbf_s"] == pytest.approx(33000 / 3)
    assert oee["mttr_s"] == pytest.approx((1800 + 3600 + 1200) / 3)
    assert oee["downtime"] == [
        {"reason": "changeover", "category": "planned", "seconds": 3600},
        {"reason": "material_wait", "category": "unplanned", "seconds": 3600},
        {"reason": "no_operator", "category": "unplanned", "seconds": 1800},
        {"reason": "jam", "category": "unplanned", "seconds": 1200},
    ]
    assert oee["time_zone"] == "Asia/Tokyo"


def test_oee_per_shift_splits_a_stop_across_the_end_of_a_shift(
    worked_two_days, api_as, operator, line_engineer
):
    query = {"line": "proto", "since": SINCE.isoformat(), "until": UNTIL.isoformat(), "by": "shift"}
    body = api_as(operator).get("/api/v1/oee", query).json()
    tuesday, wednesday = [s for s in body["shifts"]]
    # PR-PRS-1 only has a history on the line; the other stations have planned time and no run.
    assert (tuesday["shift"], tuesday["day"]) == ("day", "2026-11-24")
    press_tuesday_run = 7200 + 3600 + 1800 + 7800
    assert tuesday["run_s"] == press_tuesday_run and wednesday["run_s"] == 12600
    assert tuesday["down_s"] == 1800 + 3600 + 1200 + 1800 and wednesday["down_s"] == 1800
    stations = Station.objects.filter(line__code="proto").count()
    assert tuesday["planned_s"] == stations * 8 * 3600
    assert (tuesday["total"], tuesday["good"], wednesday["total"], wednesday["good"]) == (
        8,
        7,
        2,
        1,
    )
    # Stacking's eleven results (Tuesday 07:00) have no ideal cycle time yet: no performance.
    assert body["run_s"] == RUN_S and body["performance"] is None
    stacking = ProcessRun.objects.filter(station__code="PR-STK-1").first().recipe_version
    set_ideal_cycle_time(stacking, ideal_cycle_s=300, by=line_engineer)
    body = api_as(operator).get("/api/v1/oee", query).json()
    # The line: every result's ideal time over the line's run time (stacking reported no state).
    assert body["performance"] == pytest.approx((10 * 2640 + 11 * 300) / RUN_S)  # 0.9
    assert (body["total"], body["good"]) == (21, 19)
    assert body["planned_s"] == stations * PLANNED_S


def test_null_figures_not_a_division_by_zero(plant, api_as, operator):
    # A Sunday: nothing planned, nothing run, no results.
    body = (
        api_as(operator)
        .get(
            "/api/v1/oee",
            {
                "station": "PR-PRS-1",
                "since": tokyo(2026, 11, 22).isoformat(),
                "until": tokyo(2026, 11, 23).isoformat(),
            },
        )
        .json()
    )
    assert body["planned_s"] == 0 and body["run_s"] == 0 and body["total"] == 0
    for name in (
        "availability",
        "performance",
        "quality",
        "oee",
        "ideal_cycle_s",
        "mtbf_s",
        "mttr_s",
    ):
        assert body[name] is None, name


def test_performance_is_null_while_a_results_version_has_no_ideal_cycle_time(
    worked_two_days, api_as, operator
):
    IdealCycleTime.objects.all().delete()  # the owner may; the runtime role may not
    body = (
        api_as(operator)
        .get(
            "/api/v1/oee",
            {"station": "PR-PRS-1", "since": SINCE.isoformat(), "until": UNTIL.isoformat()},
        )
        .json()
    )
    assert body["performance"] is None and body["oee"] is None and body["quality"] == 0.8


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ({"station": "PR-NOPE-9"}, 404, "unknown_station"),
        ({"line": "atlantis"}, 404, "unknown_line"),
        ({}, 400, "invalid"),
        ({"station": "PR-PRS-1", "line": "proto"}, 400, "invalid"),
        ({"station": "PR-PRS-1", "since": "2026-11-24T00:00:00"}, 400, "invalid"),  # no offset
        ({"station": "PR-PRS-1", "since": "yesterday"}, 400, "invalid"),
        (
            {
                "station": "PR-PRS-1",
                "since": "2026-11-25T00:00:00+09:00",
                "until": "2026-11-24T00:00:00+09:00",
            },
            400,
            "invalid",
        ),
        (
            {
                "station": "PR-PRS-1",
                "since": "2024-01-01T00:00:00Z",
                "until": "2026-01-01T00:00:00Z",
            },
            400,
            "invalid",
        ),
        ({"station": "PR-PRS-1", "by": "moon"}, 400, "invalid"),
        ({"station": "PR\x00"}, 400, "invalid"),
    ],
)
def test_bad_queries_get_their_code(plant, api_as, operator, query, status, code):
    response = api_as(operator).get("/api/v1/oee", query)
    assert response.status_code == status, response.content
    assert response.json()["code"] == code


def test_the_oee_needs_a_signed_in_user(plant, api_as, outsider):
    assert api_as(None).get("/api/v1/oee", {"station": "PR-PRS-1"}).status_code == 401
    assert api_as(outsider).get("/api/v1/oee", {"station": "PR-PRS-1"}).status_code == 403


def test_an_unknown_reason_code_is_refused_and_nothing_is_written(plant, station_client):
    press = station_client("PR-PRS-1")
    changes, events = StationStateChange.objects.count(), Event.objects.count()
    response = press.post_json(STATE_URL, {"state": "down", "reason_code": "coffee_break"})
    assert response.status_code == 400 and response.json()["code"] == "invalid"
    assert "reason_code" in response.json()["errors"]
    assert (StationStateChange.objects.count(), Event.objects.count()) == (changes, events)


def test_only_stops_take_a_reason_and_only_from_the_catalogue(worked_two_days, line_engineer):
    from core.errors import DomainError

    press = worked_two_days
    running = _change_at(press, tokyo(2026, 11, 24, 8))
    with pytest.raises(DomainError) as refused:
        correct_stop_reason(running, reason_code="jam", by=line_engineer)
    assert refused.value.code == "not_a_stop"
    with pytest.raises(DomainError) as unknown:
        correct_stop_reason(
            _change_at(press, tokyo(2026, 11, 24, 10)), reason_code="gremlins", by=line_engineer
        )
    assert unknown.value.code == "invalid"
    assert not StopReasonCorrection.objects.exists()


def test_the_oee_of_a_line_reads_a_fixed_number_of_queries(worked_two_days, api_as, operator):
    client = api_as(operator)
    query = {
        "line": "yokohama",
        "since": SINCE.isoformat(),
        "until": UNTIL.isoformat(),
        "by": "shift",
    }
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/api/v1/oee", query).status_code == 200
    # Authentication (token, user, permissions) and the line, then the window's reads.
    assert len(queries) <= 16


def test_a_stop_across_the_change_of_shifts_counts_in_each(plant, api_as, operator, line_engineer):
    from datetime import time

    from lines.models import Shift, ShiftCalendar
    from lines.services import set_station_state

    line = Line.objects.get(code="proto")
    calendar = ShiftCalendar.objects.create(line=line)
    Shift.objects.create(calendar=calendar, name="early", weekday=1, start=time(6), end=time(14))
    Shift.objects.create(calendar=calendar, name="late", weekday=1, start=time(14), end=time(22))
    press = Station.objects.get(code="PR-PRS-1")
    for at, state, reason in (
        (tokyo(2026, 11, 24, 6), "running", ""),
        (tokyo(2026, 11, 24, 13, 30), "down", "jam"),
        (tokyo(2026, 11, 24, 14, 30), "running", ""),
        (tokyo(2026, 11, 24, 22), "idle", ""),
    ):
        set_station_state(press, state=state, reason=reason, by="test", occurred_at=at)
    body = (
        api_as(operator)
        .get(
            "/api/v1/oee",
            {
                "station": "PR-PRS-1",
                "since": tokyo(2026, 11, 24).isoformat(),
                "until": tokyo(2026, 11, 25).isoformat(),
                "by": "shift",
            },
        )
        .json()
    )
    # 16 h planned (no breaks), 15 h running, the hour's jam split 30 min to each shift.
    assert (body["planned_s"], body["run_s"], body["down_s"]) == (16 * 3600, 15 * 3600, 3600)
    assert body["availability"] == pytest.approx(15 / 16)
    assert body["failures"] == 1 and body["mttr_s"] == 3600
    early, late = body["shifts"]
    assert (early["shift"], early["start"], early["end"]) == (
        "early",
        "2026-11-24T06:00:00+09:00",
        "2026-11-24T14:00:00+09:00",
    )
    for shift in (early, late):
        assert (shift["planned_s"], shift["run_s"], shift["down_s"]) == (8 * 3600, 7.5 * 3600, 1800)
        assert shift["downtime"] == [{"reason": "jam", "category": "unplanned", "seconds": 1800}]


def test_results_in_the_minute_a_window_starts_count_only_from_its_start(
    plant, record, api_as, operator, line_engineer
):
    """Results are counted per minute: a window opening mid-minute takes only that minute's
    results finished after it opened, and several results of one minute all count."""
    line = Line.objects.get(code="proto")
    batch = create_batch(
        line=line,
        design=CellDesign.objects.get(code="SSB-5AH-P1"),
        route=Route.objects.get(line=line, code="std"),
        quantity=4,
        by=line_engineer,
    )
    stacker = Station.objects.get(code="PR-STK-1")
    seconds = [10, 40, 50, 59]  # all in Tuesday 09:00; the first before the window opens
    for cell, second in zip(batch.cells.order_by("serial"), seconds, strict=True):
        record(cell, stacker, occurred_at=tokyo(2026, 11, 24, 9, 0, second))
    query = {
        "station": "PR-STK-1",
        "since": tokyo(2026, 11, 24, 9, 0, 30).isoformat(),
        "until": tokyo(2026, 11, 24, 9, 0, 55).isoformat(),
    }
    body = api_as(operator).get("/api/v1/oee", query).json()
    assert (body["total"], body["good"]) == (2, 2)
    query["until"] = tokyo(2026, 11, 24, 17).isoformat()
    assert api_as(operator).get("/api/v1/oee", query).json()["total"] == 3


def test_the_line_views_oee_of_today_sums_the_day_as_the_minutes_do(worked_two_days):
    """The cards' figures of today read the day's results summed whole, not per minute: the
    same figures. Wednesday until noon: planned 08:00-12:00, running from 08:30, two results
    (09:00 and 10:00, the second failing) at 2,640 s each; 12:30's is not yet."""
    now = tokyo(2026, 11, 25, 12)
    press = Station.objects.get(pk=worked_two_days.pk)
    today_oee([press], now=now)
    cards = press.oee_today
    assert (cards.planned_s, cards.run_s, cards.total, cards.good) == (4 * 3600, 12600, 2, 1)
    assert cards.performance == 2 * 2640 / 12600 and cards.quality == 0.5
    by_minute = read_window([press], tokyo(2026, 11, 25), now, now=now).figures(press)
    assert cards == by_minute


def test_a_window_summed_whole_refuses_a_part_of_itself(worked_two_days):
    now = tokyo(2026, 11, 25, 12)
    window = read_window([worked_two_days], tokyo(2026, 11, 25), now, now=now, per_minute=False)
    assert window.figures(worked_two_days).total == 2
    with pytest.raises(ValueError):
        window.figures(worked_two_days, tokyo(2026, 11, 25, 9, 30))
