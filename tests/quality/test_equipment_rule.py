"""Equipment that could not be used holds the cell that used it: a registered press vessel,
fixture or channel out of calibration, locked out or retired at the result's time."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from audit.models import Event
from batches.models import Cell, Hold, ProcessRun
from core.errors import DomainError
from lines.equipment import lock_out, record_calibration, retire, return_to_service
from lines.models import Equipment, EquipmentStatusChange, Station

TOKYO = ZoneInfo("Asia/Tokyo")


@pytest.fixture
def fixture_with_channels(plant):
    """PR-FIX-1 (seeded) with two registered channels."""
    station = Station.objects.get(code="PR-FRM-1")
    fixture = Equipment.objects.get(code="PR-FIX-1")
    channels = [
        Equipment.objects.create(
            station=station, code=f"PR-FIX-1-CH0{n}", kind="fixture_channel", parent=fixture
        )
        for n in (1, 2)
    ]
    return fixture, channels


def _to_formation(cell, stations, record, at):
    record(cell, stations["PR-STK-1"], occurred_at=at - timedelta(hours=2))
    cell.refresh_from_db()
    record(
        cell,
        stations["PR-PRS-1"],
        occurred_at=at - timedelta(hours=1),
        equipment_ref="PR-CIP-1-261124-0001",
    )
    cell.refresh_from_db()


def _held_by_rule(cell) -> list[Hold]:
    return list(Hold.objects.filter(cells=cell, rule__code="equipment_unusable"))


def test_a_press_cycle_id_links_the_run_to_its_vessel(proto_batch, stations, record):
    cell = proto_batch.cells.order_by("serial").first()
    record(cell, stations["PR-STK-1"])
    cell.refresh_from_db()
    run = record(cell, stations["PR-PRS-1"], equipment_ref="PR-CIP-1-261124-0001")
    run.refresh_from_db()
    assert run.equipment.code == "PR-CIP-1" and run.equipment_ref == "PR-CIP-1-261124-0001"


def test_an_unknown_code_is_kept_as_text_not_refused(proto_batch, stations, record):
    cell = proto_batch.cells.order_by("serial").first()
    record(cell, stations["PR-STK-1"])
    cell.refresh_from_db()
    run = record(cell, stations["PR-PRS-1"], equipment_ref="VESSEL-FROM-ELSEWHERE-7")
    run.refresh_from_db()
    assert run.equipment is None and run.equipment_ref == "VESSEL-FROM-ELSEWHERE-7"


def test_equipment_out_of_calibration_holds_the_cell_and_in_calibration_does_not(
    proto_batch, stations, record, fixture_with_channels, line_engineer
):
    fixture, (channel, _) = fixture_with_channels
    # Calibrated on 1 Oct, due 31 Oct: in calibration through 31 Oct (Tokyo), out from 1 Nov.
    record_calibration(
        channel,
        due=date(2026, 10, 31),
        calibrated_at=datetime(2026, 10, 1, 9, tzinfo=TOKYO),
        by=line_engineer,
    )
    in_cal, out_of_cal = list(proto_batch.cells.order_by("serial"))[:2]
    for cell, at in (
        (in_cal, datetime(2026, 10, 31, 23, tzinfo=TOKYO)),
        (out_of_cal, datetime(2026, 11, 1, 9, tzinfo=TOKYO)),
    ):
        _to_formation(cell, stations, record, at)
        run = record(
            cell,
            stations["PR-FRM-1"],
            occurred_at=at,
            fixture_ref="PR-FIX-1",
            channel_ref=channel.code,
        )
        assert (
            ProcessRun.objects.get(pk=run.pk).equipment_id == channel.pk
        )  # the channel, not the fixture
    assert _held_by_rule(in_cal) == []
    (hold,) = _held_by_rule(out_of_cal)
    assert hold.scope == Hold.Scope.CELL and hold.target == out_of_cal.serial
    assert "out of calibration (due 2026-10-31)" in hold.reason
    assert Cell.objects.get(pk=out_of_cal.pk).status != Cell.Status.SCRAPPED


def test_a_locked_out_channel_holds_what_it_made_after_the_lockout_only(
    proto_batch, stations, record, fixture_with_channels, line_engineer
):
    _, (channel, other) = fixture_with_channels
    before, after, elsewhere = list(proto_batch.cells.order_by("serial"))[:3]
    now = timezone.now()
    _to_formation(before, stations, record, now - timedelta(hours=1))
    record(
        before, stations["PR-FRM-1"], occurred_at=now - timedelta(hours=1), channel_ref=channel.code
    )
    lock_out(channel, by=line_engineer, reason="Reads 20 mV high against the reference cell")
    for cell, used in ((after, channel), (elsewhere, other)):
        _to_formation(cell, stations, record, timezone.now())
        record(cell, stations["PR-FRM-1"], occurred_at=timezone.now(), channel_ref=used.code)
    assert _held_by_rule(before) == [] and _held_by_rule(elsewhere) == []
    (hold,) = _held_by_rule(after)
    assert f"{channel.code} was locked out" in hold.reason
    event = Event.objects.get(verb="equipment_locked_out", subject=channel.code)
    assert event.reason.startswith("Reads 20 mV") and event.actor == line_engineer.username


def test_lockout_moves_only_where_the_transitions_allow(fixture_with_channels, line_engineer):
    _, (channel, _) = fixture_with_channels
    with pytest.raises(DomainError) as no_reason:
        lock_out(channel, by=line_engineer, reason=" ")
    assert no_reason.value.code == "reason_required"
    lock_out(channel, by=line_engineer, reason="drifts")
    return_to_service(channel, by=line_engineer, reason="recalibrated")
    retire(channel, by=line_engineer, reason="worn contacts")
    with pytest.raises(DomainError) as refused:
        return_to_service(channel, by=line_engineer, reason="try again")
    assert refused.value.code == "invalid_transition"
    assert list(
        EquipmentStatusChange.objects.filter(equipment=channel)
        .order_by("at", "id")
        .values_list("status", flat=True)
    ) == ["locked_out", "in_service", "retired"]


def test_a_retired_vessel_holds_the_cell_it_pressed(proto_batch, stations, record, line_engineer):
    retire(
        Equipment.objects.get(code="PR-CIP-1"),
        by=line_engineer,
        reason="Seal replaced by a new vessel",
    )
    cell = proto_batch.cells.order_by("serial").first()
    record(cell, stations["PR-STK-1"])
    cell.refresh_from_db()
    record(cell, stations["PR-PRS-1"], equipment_ref="PR-CIP-1-261130-0009")
    (hold,) = _held_by_rule(cell)
    assert "PR-CIP-1 was retired" in hold.reason


def test_results_and_cycler_uploads_name_fixture_and_channel(
    proto_batch,
    stations,
    station_client,
    result_for,
    process_pending,
    record,
    fixture_with_channels,
):
    _, (channel, _) = fixture_with_channels
    cell = proto_batch.cells.order_by("serial").first()
    _to_formation(cell, stations, record, timezone.now())
    response = station_client("PR-FRM-1").post_results(
        result_for(cell, "formation", fixture="PR-FIX-1", channel=channel.code)
    )
    assert response.status_code == 202, response.content
    process_pending()
    run = ProcessRun.objects.get(cell=cell, station__code="PR-FRM-1")
    assert (run.fixture_ref, run.channel_ref, run.equipment_id) == (
        "PR-FIX-1",
        channel.code,
        channel.pk,
    )


def test_a_control_character_in_a_channel_is_refused_and_nothing_stored(
    proto_batch, station_client, result_for
):
    from stations.models import InboxEntry

    cell = proto_batch.cells.first()
    response = station_client("PR-FRM-1").post_results(
        result_for(cell, "formation", channel="CH\x01")
    )
    assert response.status_code == 400 and response.json()["code"] == "invalid"
    assert not InboxEntry.objects.exists()


def test_a_cycler_upload_names_its_fixture_and_channel(
    proto_batch,
    stations,
    station_client,
    process_pending,
    record,
    fixture_with_channels,
    tmp_path,
    settings,
    line_engineer,
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from tests.formation import synthetic

    settings.MEDIA_ROOT = tmp_path
    _, (channel, _) = fixture_with_channels
    lock_out(channel, by=line_engineer, reason="Contact resistance high")
    # An upload is dated by its arrival, the database's now(): in this test's one transaction
    # that is the transaction's start, before the lockout. Locked out an hour earlier instead.
    EquipmentStatusChange.objects.filter(equipment=channel).update(
        at=timezone.now() - timedelta(hours=1)
    )
    cell = proto_batch.cells.order_by("serial").first()
    _to_formation(cell, stations, record, timezone.now())
    content = synthetic.write_csv(
        synthetic.build(synthetic.FORMATION), tmp_path / "f.csv"
    ).read_bytes()
    response = station_client("PR-FRM-1").http.post(
        "/api/v1/station/cycler-files",
        {
            "file": SimpleUploadedFile("f.csv", content),
            "cell": cell.serial,
            "event_id": "FRM-CH01-1",
            "fixture": "PR-FIX-1",
            "channel": channel.code,
        },
        format="multipart",
    )
    assert response.status_code == 202, response.content
    process_pending()
    run = ProcessRun.objects.get(cell=cell, station__code="PR-FRM-1")
    assert (run.fixture_ref, run.channel_ref, run.equipment_id) == (
        "PR-FIX-1",
        channel.code,
        channel.pk,
    )
    (hold,) = _held_by_rule(cell)
    assert "locked out" in hold.reason


def test_a_channel_of_a_locked_out_fixture_holds_the_cell(
    proto_batch, stations, record, fixture_with_channels, line_engineer
):
    fixture, (channel, _) = fixture_with_channels
    lock_out(fixture, by=line_engineer, reason="Clamp plate cracked")
    cell = proto_batch.cells.order_by("serial").first()
    _to_formation(cell, stations, record, timezone.now())
    record(cell, stations["PR-FRM-1"], occurred_at=timezone.now(), channel_ref=channel.code)
    (hold,) = _held_by_rule(cell)
    assert "PR-FIX-1 was locked out" in hold.reason
