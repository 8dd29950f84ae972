"""Holds stop everything they should: every cell of a held press cycle (pressed before or after
the hold), every cell below a held roll, every cell that consumes a lot it may not use. Through
the station API and the workers' service, as equipment would."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from audit.models import Event
from batches.models import Cell, Hold, MaterialLot
from batches.services import hold_lot, set_lot_status
from core.errors import DomainError
from stations.models import InboxEntry

CYCLE = "CIP-1-cycle-7"


@pytest.fixture
def stacked(proto_batch, station_client, result_for, process_pending):
    """The proto batch's ten cells, all stacked from the planned lots."""
    stacker = station_client("PR-STK-1")
    lots = {"cathode": "CAT-2611-A-01", "electrolyte": "SE-2611-01"}
    cells = list(proto_batch.cells.order_by("position"))
    stacker.post_results(*(result_for(c, "stacking", material_lots=lots) for c in cells))
    assert process_pending()["applied"] == len(cells)
    return cells


def held(cell: Cell) -> bool:
    return Hold.objects.filter(status=Hold.Status.OPEN, cells=cell).exists()


def _pressed(presser, result_for, cell, *, short: bool = False, cycle: str = CYCLE) -> dict:
    body = result_for(cell, "pressing", event_id=f"P-{cell.serial}", equipment=cycle)
    if short:
        body["defects"] = ["short"]
    return body


# ---------------------------------------------------------------- press cycles


def test_a_press_cycle_hold_covers_mates_pressed_before_and_after_the_short(
    stacked, station_client, result_for, process_pending
):
    presser = station_client("PR-PRS-1")
    before, short, after = stacked[0], stacked[1], stacked[2]
    presser.post_results(_pressed(presser, result_for, before))
    process_pending()
    presser.post_results(_pressed(presser, result_for, short, short=True))
    process_pending()
    hold = Hold.objects.get(scope=Hold.Scope.PRESS_CYCLE, status=Hold.Status.OPEN)
    assert hold.target == f"PR-PRS-1:{CYCLE}"
    assert set(hold.cells.values_list("serial", flat=True)) == {before.serial, short.serial}

    # A cycle-mate whose result arrives after the short passes pressing, yet does not move on.
    presser.post_results(_pressed(presser, result_for, after))
    assert process_pending()["applied"] == 1
    assert InboxEntry.objects.get(event_id=f"P-{after.serial}").outcome == "pass"
    assert held(after) and hold.cells.count() == 3
    joined = Event.objects.get(verb="cell_joined_hold", subject=after.serial)
    assert joined.data == {"hold": hold.pk, "scope": "press_cycle", "target": hold.target}
    refused = station_client("PR-FRM-1").post_json(
        "/api/v1/station/track-in", {"cell": after.serial}
    )
    assert (refused.status_code, refused.json()["code"]) == (409, "on_hold")
    # A cell of another cycle is not held.
    presser.post_results(_pressed(presser, result_for, stacked[3], cycle="CIP-1-cycle-8"))
    process_pending()
    assert not held(stacked[3])


def test_a_cell_joins_a_press_cycle_held_by_hand_and_the_hold_closes_over_all(
    stacked, station_client, result_for, process_pending, line_engineer, quality_engineer
):
    from batches.services import hold_press_cycle, release_hold

    presser = station_client("PR-PRS-1")
    presser.post_results(_pressed(presser, result_for, stacked[0]))
    process_pending()
    hold = hold_press_cycle(
        presser.station, CYCLE, by=line_engineer, reason="vessel pressure logger gap"
    )
    presser.post_results(_pressed(presser, result_for, stacked[1]))
    process_pending()
    assert hold.cells.count() == 2
    release_hold(hold, by=quality_engineer, disposition="release", reason="logger checked: ok")
    assert not held(stacked[0]) and not held(stacked[1])
    released = Event.objects.filter(verb="cell_released", data__hold=hold.pk)
    assert set(released.values_list("subject", flat=True)) == {stacked[0].serial, stacked[1].serial}
    closed = Event.objects.get(verb="hold_closed", data__hold=hold.pk)
    assert closed.data["cells"] == 2
    assert set(closed.data["serials"]) == {stacked[0].serial, stacked[1].serial}


# ---------------------------------------------------------------- the lot tree


@pytest.fixture
def piece(plant) -> MaterialLot:
    """A piece cut from sheet lot CAT-2611-A-01, itself cut from roll CAT-ROLL-2611-A."""
    sheet = MaterialLot.objects.get(code="CAT-2611-A-01")
    assert sheet.parent.code == "CAT-ROLL-2611-A"
    return MaterialLot.objects.create(
        code="CAT-2611-A-01-P1",
        role=sheet.role,
        material=sheet.material,
        parent=sheet,
        quantity=Decimal("10"),
        unit=sheet.unit,
        unit_cost=sheet.unit_cost,
        received_at=timezone.now(),
    )


def test_a_roll_hold_stops_cells_made_from_lots_cut_from_it_two_levels_down(
    proto_batch, piece, station_client, result_for, process_pending, line_engineer, api_as, operator
):
    cells = list(proto_batch.cells.order_by("position"))
    stacker = station_client("PR-STK-1")
    lots = {"cathode": piece.code, "electrolyte": "SE-2611-01"}
    stacker.post_results(result_for(cells[0], "stacking", material_lots=lots))
    process_pending()
    roll = MaterialLot.objects.get(code="CAT-ROLL-2611-A")
    hold = hold_lot(roll, by=line_engineer, reason="coating thickness drift on the roll")
    assert list(hold.cells.all()) == [cells[0]]  # consumed before the hold: in it from the start

    stacker.post_results(result_for(cells[1], "stacking", material_lots=lots))
    process_pending()
    assert held(cells[1]) and hold.cells.count() == 2  # consumed after: joins it

    body = api_as(operator).get(f"/api/v1/lots/{roll.code}").json()
    assert body["children"] == ["CAT-2611-A-01", "CAT-2611-A-02"]
    assert {cells[0].serial, cells[1].serial} <= set(body["cells"])
    cell = api_as(operator).get(f"/api/v1/cells/{cells[1].serial}").json()
    assert cell["genealogy"]["cathode"] == piece.code
    assert [(lot["code"], lot["parent"]) for lot in cell["lots"] if lot["role"] == "cathode"] == [
        (piece.code, "CAT-2611-A-01"),
        ("CAT-2611-A-01", "CAT-ROLL-2611-A"),
        ("CAT-ROLL-2611-A", None),
    ]


def test_a_lot_hold_over_the_api_answers_201_and_stops_the_lots_below(
    proto_batch, piece, api_as, line_engineer, operator
):
    response = api_as(line_engineer).post(
        "/api/v1/lots/CAT-ROLL-2611-A/hold", {"reason": "supplier recall"}, format="json"
    )
    assert response.status_code == 201
    assert (response.json()["scope"], response.json()["target"]) == ("lot", "CAT-ROLL-2611-A")
    refused = api_as(operator).post(
        "/api/v1/lots/CAT-ROLL-2611-A/hold", {"reason": "x"}, format="json"
    )
    assert refused.status_code == 403
    unknown = api_as(line_engineer).post("/api/v1/lots/NO-SUCH/hold", {"reason": "x"})
    assert (unknown.status_code, unknown.json()["code"]) == (404, "not_found")
    assert Hold.objects.filter(scope="lot").count() == 1


# ---------------------------------------------------------------- lot status


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"status": MaterialLot.Status.REJECTED}, "is rejected"),
        ({"status": MaterialLot.Status.QUARANTINE}, "is quarantine"),
        ({"status": MaterialLot.Status.CONSUMED}, "is used up"),
        ({"expires_at": timezone.now() - timedelta(days=1)}, "expired on"),
    ],
)
def test_a_cell_that_consumes_a_lot_it_may_not_use_is_held_naming_the_lot(
    proto_batch, station_client, result_for, process_pending, change, says, signed_in, operator
):
    MaterialLot.objects.filter(code="SE-2611-01").update(**change)
    cell = proto_batch.cells.order_by("position").first()
    lots = {"cathode": "CAT-2611-A-01", "electrolyte": "SE-2611-01"}
    station_client("PR-STK-1").post_results(result_for(cell, "stacking", material_lots=lots))
    assert process_pending()["applied"] == 1
    hold = Hold.objects.get(status=Hold.Status.OPEN, cells=cell)
    assert (hold.scope, hold.rule.code) == ("cell", "unusable_lot")
    assert "SE-2611-01" in hold.reason and says in hold.reason and hold.lot.code == "SE-2611-01"
    refused = station_client("PR-PRS-1").post_json(
        "/api/v1/station/track-in", {"cell": cell.serial}
    )
    assert refused.json()["code"] == "on_hold"
    lot_page = signed_in(operator).get("/lots/SE-2611-01/").content.decode()
    assert f'href="/cells/{cell.serial}/"' in lot_page.split("<h2>Holds")[1]


def test_a_usable_lot_holds_nothing(proto_batch, station_client, result_for, process_pending):
    MaterialLot.objects.filter(code="SE-2611-01").update(
        expires_at=timezone.now() + timedelta(days=30)
    )
    cell = proto_batch.cells.order_by("position").first()
    lots = {"cathode": "CAT-2611-A-01", "electrolyte": "SE-2611-01"}
    station_client("PR-STK-1").post_results(result_for(cell, "stacking", material_lots=lots))
    process_pending()
    assert not held(cell)


def test_lot_status_changes_are_checked_and_recorded(plant, quality_engineer):
    lot = MaterialLot.objects.get(code="SE-2611-01")
    set_lot_status(lot, MaterialLot.Status.QUARANTINE, by=quality_engineer, reason="moisture")
    event = Event.objects.get(verb="lot_status_changed", subject="SE-2611-01")
    assert (event.actor, event.reason, event.data) == (
        quality_engineer.username,
        "moisture",
        {"from": "released", "to": "quarantine"},
    )
    with pytest.raises(DomainError) as refused:
        set_lot_status(lot, MaterialLot.Status.CONSUMED, by=quality_engineer, reason="x")
    assert refused.value.code == "invalid_transition"
    with pytest.raises(DomainError) as refused:
        set_lot_status(lot, MaterialLot.Status.RELEASED, by=quality_engineer, reason=" ")
    assert refused.value.code == "reason_required"
    assert MaterialLot.objects.get(pk=lot.pk).status == "quarantine"
    assert Event.objects.filter(verb="lot_status_changed").count() == 1


@pytest.mark.parametrize(
    ("lots", "status", "code"),
    [
        ({"electrolyte": "SE-NOPE"}, 400, "unknown_lot"),
        ({"electrolyte": "CAT-2611-A-01"}, 400, "wrong_lot_role"),
        ({"electrolyte": "SE-2611-01"}, 200, None),
    ],
)
def test_track_in_checks_the_lots_the_station_will_load(
    proto_batch, station_client, lots, status, code
):
    cell = proto_batch.cells.order_by("position").first()
    response = station_client("PR-STK-1").post_json(
        "/api/v1/station/track-in", {"cell": cell.serial, "material_lots": lots}
    )
    assert response.status_code == status
    assert response.json().get("code") == code


def test_track_in_refuses_a_lot_that_may_not_be_used_or_is_held(
    proto_batch, piece, station_client, line_engineer
):
    cell = proto_batch.cells.order_by("position").first()
    stacker = station_client("PR-STK-1")

    def track_in(lots):
        return stacker.post_json(
            "/api/v1/station/track-in", {"cell": cell.serial, "material_lots": lots}
        )

    MaterialLot.objects.filter(code="SE-2611-01").update(status="rejected")
    refused = track_in({"electrolyte": "SE-2611-01"})
    assert (refused.status_code, refused.json()["code"]) == (409, "lot_unusable")
    assert "SE-2611-01" in refused.json()["detail"]
    hold_lot(piece.parent.parent, by=line_engineer, reason="roll recall")
    refused = track_in({"cathode": piece.code})
    assert (refused.status_code, refused.json()["code"]) == (409, "lot_on_hold")
    assert "CAT-ROLL-2611-A" in refused.json()["detail"]
    assert not Hold.objects.filter(cells=cell).exists()  # a refused track-in changes nothing


def test_a_result_naming_an_unknown_lot_or_one_of_another_role_is_rejected_naming_it(
    proto_batch, station_client, result_for, process_pending
):
    cells = list(proto_batch.cells.order_by("position"))
    stacker = station_client("PR-STK-1")
    stacker.post_results(
        result_for(cells[0], "stacking", event_id="S-0", material_lots={"cathode": "CAT-NOPE"}),
        result_for(
            cells[1], "stacking", event_id="S-1", material_lots={"electrolyte": "CAT-2611-A-01"}
        ),
    )
    assert process_pending()["rejected"] == 2
    unknown, wrong = (stacker.status_of(e).json() for e in ("S-0", "S-1"))
    assert (unknown["reason_code"], "CAT-NOPE" in unknown["reason"]) == ("unknown_lot", True)
    assert (wrong["reason_code"], "CAT-2611-A-01" in wrong["reason"]) == ("wrong_lot_role", True)
    assert (
        not Cell.objects.filter(pk__in=[cells[0].pk, cells[1].pk])
        .exclude(status="planned")
        .exists()
    )


@pytest.mark.django_db(transaction=True)
def test_a_mate_applied_while_the_short_is_being_applied_does_not_escape(
    proto_batch, station_client, result_for, process_pending, monkeypatch, settings
):
    """Two workers at once, the worst way round: the mate's worker has looked for the cycle's
    holds (none yet) when the short's worker opens one. Without the press cycle's lock the short's
    hold would miss the mate's run (not committed yet) and the mate would never look again."""
    import threading

    from django.db import connection

    from batches import hooks

    cells = list(proto_batch.cells.order_by("position"))[:2]
    station_client("PR-STK-1").post_results(*(result_for(c, "stacking") for c in cells))
    process_pending()
    presser = station_client("PR-PRS-1")
    mate, short = cells
    presser.post_results(_pressed(presser, result_for, mate))
    presser.post_results(_pressed(presser, result_for, short, short=True))
    settings.INGEST_TASK_CHUNK = 1  # each worker its own row: none takes the other's along
    mate_row = InboxEntry.objects.get(event_id=f"P-{mate.serial}").pk
    short_row = InboxEntry.objects.get(event_id=f"P-{short.serial}").pk
    short_committed = threading.Event()
    mate_judged = threading.Event()

    def pause_the_mate(step):
        if threading.current_thread().name == "mate" and step.run.cell_id == mate.pk:
            mate_judged.set()
            short_committed.wait(timeout=3)  # with the lock, the short waits for the mate
        return None

    monkeypatch.setattr(hooks, "_after_step", [*hooks._after_step, pause_the_mate])

    def apply(rows: list[int], done: threading.Event | None = None) -> None:
        try:
            worker.process_entries(rows)
            if done is not None:
                done.set()
        finally:
            connection.close()

    from stations import worker

    mate_worker = threading.Thread(target=apply, args=([mate_row],), name="mate")
    mate_worker.start()
    assert mate_judged.wait(timeout=10)
    short_worker = threading.Thread(target=apply, args=([short_row], short_committed))
    short_worker.start()
    mate_worker.join(timeout=20)
    short_worker.join(timeout=20)
    hold = Hold.objects.get(scope=Hold.Scope.PRESS_CYCLE, status=Hold.Status.OPEN)
    assert set(hold.cells.values_list("serial", flat=True)) == {mate.serial, short.serial}


# ---------------------------------------------------------------- pages


def test_the_lot_page_shows_the_tree_and_every_cell_below(
    proto_batch, piece, station_client, result_for, process_pending, signed_in, operator
):
    cell = proto_batch.cells.order_by("position").first()
    station_client("PR-STK-1").post_results(
        result_for(cell, "stacking", material_lots={"cathode": piece.code})
    )
    process_pending()
    page = signed_in(operator).get("/lots/CAT-ROLL-2611-A/").content.decode()
    tree = page.split('id="lot-tree"')[1].split("</section>")[0]
    for code in ("CAT-ROLL-2611-A", "CAT-2611-A-01", "CAT-2611-A-02", piece.code):
        assert code in tree
    assert tree.index("CAT-2611-A-01") < tree.index(piece.code)  # a piece under its sheet
    assert cell.serial in page and f'href="/lots/{piece.code}/"' in page


def test_a_quality_engineer_rejects_a_lot_from_its_page_an_operator_cannot(
    plant, signed_in, quality_engineer, operator
):
    form = {"status": "rejected", "reason": "moisture above spec at incoming inspection"}
    refused = signed_in(operator).post("/lots/SE-2611-02/status", form)
    assert refused.status_code == 403
    assert MaterialLot.objects.get(code="SE-2611-02").status == "released"
    done = signed_in(quality_engineer).post("/lots/SE-2611-02/status", form)
    assert done.status_code == 302
    assert MaterialLot.objects.get(code="SE-2611-02").status == "rejected"
    assert Event.objects.filter(verb="lot_status_changed", subject="SE-2611-02").exists()


def test_the_press_cycle_page_lists_its_cells_and_search_finds_it(
    stacked, station_client, result_for, process_pending, signed_in, operator, line_engineer
):
    presser = station_client("PR-PRS-1")
    presser.post_results(*(_pressed(presser, result_for, c) for c in stacked[:3]))
    process_pending()
    client = signed_in(operator)
    page = client.get(f"/press-cycles/PR-PRS-1/{CYCLE}/").content.decode()
    assert all(c.serial in page for c in stacked[:3]) and stacked[3].serial not in page
    assert client.get("/search/", {"q": CYCLE}).url == f"/press-cycles/PR-PRS-1/{CYCLE}/"
    assert client.get("/search/", {"q": "CIP-1"}).status_code == 200  # a prefix lists it
    assert f"PR-PRS-1:{CYCLE}" in client.get("/search/", {"q": "CIP-1"}).content.decode()
    assert client.get("/press-cycles/PR-PRS-1/no-such-cycle/").status_code == 404
    held = signed_in(line_engineer).post(
        f"/press-cycles/PR-PRS-1/{CYCLE}/hold", {"reason": "vessel temperature logger gap"}
    )
    assert held.status_code == 302
    assert Hold.objects.get(scope="press_cycle").cells.count() == 3
    cell_page = client.get(f"/cells/{stacked[0].serial}/").content.decode()
    assert f'href="/press-cycles/PR-PRS-1/{CYCLE}/"' in cell_page


def test_cancelling_a_batch_scraps_each_cell_with_its_own_event(proto_batch, line_engineer):
    from batches.services import cancel_batch

    cancel_batch(proto_batch, by=line_engineer, reason="wrong cathode lot planned")
    serials = set(proto_batch.cells.values_list("serial", flat=True))
    scrapped = Event.objects.filter(verb="cell_scrapped", data__batch_cancelled=proto_batch.code)
    assert set(scrapped.values_list("subject", flat=True)) == serials
    cancelled = Event.objects.get(verb="batch_cancelled", subject=proto_batch.code)
    assert cancelled.data["cells"] == 10 and set(cancelled.data["serials"]) == serials
