"""Non-conformance reports through their services: the lifecycle, every refused transition, the
signed closure and its trail, and code numbering under concurrency."""

from __future__ import annotations

import threading
from datetime import date

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.utils import timezone

from audit.models import Event
from batches.models import Hold
from batches.services import hold_batch, hold_cell
from core.errors import DomainError
from lines.models import Line
from quality import nonconformance as ncrs
from quality.models import NonConformance, NonConformanceAction
from tests.quality.ncr_helpers import PASSWORD, open_ncr, walk_to

pytestmark = pytest.mark.usefixtures("roles")


@pytest.fixture
def batch_hold(proto_batch, line_engineer) -> Hold:
    return hold_batch(proto_batch, by=line_engineer, reason="Cathode overhang on stacker 1")


def trail(ncr: NonConformance) -> list[str]:
    return list(
        Event.objects.filter(subject_type="ncr", subject=ncr.code)
        .order_by("id")
        .values_list("verb", flat=True)
    )


def refused(code: str, call, *args, **kwargs) -> DomainError:
    with pytest.raises(DomainError) as error:
        call(*args, **kwargs)
    assert error.value.code == code, error.value.detail
    return error.value


# ---------------------------------------------------------------- lifecycle


def test_an_ncr_goes_from_a_hold_to_a_signed_closure(batch_hold, line_engineer, quality_engineer):
    year = timezone.localdate().year
    ncr = open_ncr(line_engineer, opened_from=batch_hold)
    assert ncr.code == f"NCR-{year}-0001" and ncr.status == "open"
    assert list(ncr.holds.all()) == [batch_hold] and ncr.opened_by == line_engineer

    ncr = ncrs.record_containment(
        ncr, containment="Batch held; stacker 1 stopped", by=line_engineer
    )
    assert ncr.status == "contained" and ncr.contained_by == line_engineer
    ncr = ncrs.record_root_cause(
        ncr, category="machine", five_whys="Gripper slipped; its pad was worn", by=quality_engineer
    )
    assert (ncr.status, ncr.root_cause) == ("analysed", "machine")
    corrective = ncrs.add_action(
        ncr,
        kind="corrective",
        description="Replace the gripper pad",
        owner=line_engineer,
        due_date=date(2026, 12, 4),
        by=quality_engineer,
    )
    preventive = ncrs.add_action(
        ncr,
        kind="preventive",
        description="Pad wear in the weekly maintenance plan",
        owner=line_engineer,
        due_date=date(2027, 1, 15),
        by=quality_engineer,
    )
    ncr.refresh_from_db()
    assert ncr.status == "actions"
    ncrs.complete_action(corrective, by=line_engineer, note="pad replaced 2026-12-01")
    corrective.refresh_from_db()
    assert (corrective.status, corrective.done_by, corrective.done_note) == (
        "done",
        line_engineer,
        "pad replaced 2026-12-01",
    )
    # A preventive action may still run at verification; closing waits for it.
    ncr = ncrs.record_verification(
        ncr, verification="Overhang < 0.1 mm on 3 batches since", by=quality_engineer
    )
    assert ncr.status == "verification" and ncr.verified_by == quality_engineer
    ncrs.complete_action(preventive, by=line_engineer)
    ncr = ncrs.close_nonconformance(
        ncr, password=PASSWORD, meaning="Approved: closed after verification", by=quality_engineer
    )
    ncr.refresh_from_db()
    assert ncr.status == "closed"
    assert ncr.signed_by == quality_engineer and ncr.signed_at is not None
    assert ncr.signature_meaning == "Approved: closed after verification"
    assert trail(ncr) == [
        "ncr_opened",
        "ncr_contained",
        "ncr_analysed",
        "ncr_action_added",
        "ncr_action_added",
        "ncr_action_done",
        "ncr_verification",
        "ncr_action_done",
        "ncr_closed",
    ]


def test_the_signature_meaning_signer_and_time_are_in_the_trail(line_engineer, quality_engineer):
    quality_engineer.first_name, quality_engineer.last_name = "Quinn", "Quality"
    quality_engineer.save()
    ncr = walk_to(open_ncr(line_engineer), "verification", by=line_engineer)
    before = timezone.now()
    ncr = ncrs.close_nonconformance(
        ncr, password=PASSWORD, meaning="Approved: effective", by=quality_engineer
    )
    closing = Event.objects.get(subject_type="ncr", subject=ncr.code, verb="ncr_closed")
    assert closing.actor == "quinn-quality" and closing.user == quality_engineer
    assert closing.reason == "Approved: effective"
    signature = closing.data["signature"]
    assert signature["meaning"] == "Approved: effective"
    assert signature["signed_by"] == "quinn-quality" and signature["signer_name"] == "Quinn Quality"
    assert signature["method"] == "password re-entered"
    assert before <= ncr.signed_at <= timezone.now()
    assert signature["signed_at"] == ncr.signed_at.isoformat()
    assert closing.data["from"] == "verification" and closing.data["to"] == "closed"


def test_a_draft_from_a_failed_run_hold_names_its_line_and_step(
    proto_batch, stations, record, line_engineer
):
    cell = proto_batch.cells.order_by("position").first()
    record(cell, stations["PR-STK-1"])
    run = cell.runs.get()
    hold = hold_cell(cell, by=line_engineer, reason="Overhang 0.4 mm\nseen on camera", run=run)
    draft = ncrs.draft_from_hold(hold)
    assert draft.line == Line.objects.get(code="proto") and draft.step == "stacking"
    assert draft.title == f"Cell {cell.serial}: Overhang 0.4 mm"
    assert draft.description == "Overhang 0.4 mm\nseen on camera"


def test_a_batch_hold_draft_takes_the_batch_line(batch_hold, proto_batch):
    draft = ncrs.draft_from_hold(batch_hold)
    assert draft.line == proto_batch.line and draft.step == ""


# ---------------------------------------------------------------- numbering


def test_codes_run_on_within_the_year_and_restart_with_a_new_one(line_engineer):
    year = timezone.localdate().year
    NonConformance.objects.create(
        code=f"NCR-{year - 1}-0041",
        year=year - 1,
        number=41,
        title="last year's",
        description="old",
        line=Line.objects.get(code="proto"),
        opened_by=line_engineer,
    )
    first, second = open_ncr(line_engineer), open_ncr(line_engineer)
    assert [first.code, second.code] == [f"NCR-{year}-0001", f"NCR-{year}-0002"]


@pytest.mark.django_db(transaction=True)
def test_two_engineers_opening_at_once_get_two_consecutive_codes(plant, roles):
    engineers = [User.objects.create_user(username=f"eng-{n}", password=PASSWORD) for n in range(2)]
    from django.contrib.auth.models import Group

    for engineer in engineers:
        engineer.groups.add(Group.objects.get(name="line_engineer"))
    year = timezone.localdate().year
    both_inside = threading.Barrier(2)
    codes, failures = [], []

    def open_one(engineer: User) -> None:
        try:
            from django.db import transaction

            with transaction.atomic():
                # Both transactions are open before either takes a number.
                both_inside.wait(timeout=10)
                codes.append(open_ncr(engineer, title=f"by {engineer.username}").code)
        except Exception as error:  # reported below, in the test's thread
            failures.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=open_one, args=(e,)) for e in engineers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert failures == []
    assert sorted(codes) == [f"NCR-{year}-0001", f"NCR-{year}-0002"]
    assert sorted(NonConformance.objects.values_list("number", flat=True)) == [1, 2]


# ---------------------------------------------------------------- refusals


# What each status refuses: the service and its arguments (besides the NCR and `by`).
def _containment(ncr, by):
    return ncrs.record_containment(ncr, containment="held", by=by)


def _root_cause(ncr, by):
    return ncrs.record_root_cause(ncr, category="method", five_whys="why", by=by)


def _action(ncr, by):
    return ncrs.add_action(
        ncr, kind="corrective", description="fix", owner=by, due_date=date(2026, 12, 1), by=by
    )


def _verification(ncr, by):
    return ncrs.record_verification(ncr, verification="works", by=by)


def _reopen(ncr, by):
    return ncrs.reopen_actions(ncr, reason="did not work", by=by)


def _close(ncr, by):
    return ncrs.close_nonconformance(ncr, password=PASSWORD, meaning="Approved", by=by)


def _cancel(ncr, by):
    return ncrs.cancel_nonconformance(ncr, reason="duplicate", by=by)


SERVICES = {
    "containment": _containment,
    "root cause": _root_cause,
    "action": _action,
    "verification": _verification,
    "reopen": _reopen,
    "close": _close,
    "cancel": _cancel,
}
ALLOWED = {
    "open": {"containment", "cancel"},
    "contained": {"root cause", "cancel"},
    "analysed": {"root cause", "action", "cancel"},  # the root cause may be written again
    "actions": {"action", "verification", "cancel"},
    "verification": {"reopen", "close", "cancel"},
    "closed": set(),
    "cancelled": set(),
}
REFUSED = [
    (status, service)
    for status, allowed in ALLOWED.items()
    for service in SERVICES
    if service not in allowed
]


@pytest.mark.parametrize(("status", "service"), REFUSED)
def test_a_transition_not_declared_is_refused_and_writes_nothing(
    line_engineer, quality_engineer, status, service
):
    ncr = walk_to(open_ncr(quality_engineer), status, by=quality_engineer)
    events = Event.objects.count()
    actions = NonConformanceAction.objects.count()
    refused("invalid_transition", SERVICES[service], ncr, quality_engineer)
    ncr.refresh_from_db()
    assert ncr.status == status
    assert Event.objects.count() == events and NonConformanceAction.objects.count() == actions


def test_the_declared_transitions_are_those_the_tests_walk():
    declared = {str(s): {str(t) for t in to} for s, to in NonConformance.TRANSITIONS.items()}
    assert declared == {
        "open": {"contained", "cancelled"},
        "contained": {"analysed", "cancelled"},
        "analysed": {"actions", "cancelled"},
        "actions": {"verification", "cancelled"},
        "verification": {"closed", "actions", "cancelled"},
        "closed": set(),
        "cancelled": set(),
    }


def test_closure_is_refused_without_the_quality_permission(line_engineer):
    ncr = walk_to(open_ncr(line_engineer), "verification", by=line_engineer)
    events = Event.objects.count()
    error = refused("permission_denied", _close, ncr, line_engineer)
    assert error.status == 403
    ncr.refresh_from_db()
    assert ncr.status == "verification" and ncr.signed_by is None
    assert Event.objects.count() == events


def test_closure_is_refused_with_a_wrong_password(line_engineer, quality_engineer):
    ncr = walk_to(open_ncr(line_engineer), "verification", by=line_engineer)
    events = Event.objects.count()
    error = refused(
        "signature_invalid",
        ncrs.close_nonconformance,
        ncr,
        password="not-my-password",
        meaning="Approved",
        by=quality_engineer,
    )
    assert error.status == 403
    ncr.refresh_from_db()
    assert ncr.status == "verification" and ncr.signed_by is None and ncr.signature_meaning == ""
    assert Event.objects.count() == events


def test_closure_is_refused_while_an_action_is_open(line_engineer, quality_engineer):
    ncr = walk_to(open_ncr(line_engineer), "actions", by=line_engineer)
    preventive = ncrs.add_action(
        ncr,
        kind="preventive",
        description="Update the FMEA",
        owner=quality_engineer,
        due_date=date(2027, 2, 1),
        by=line_engineer,
    )
    ncr = walk_to(ncr, "verification", by=line_engineer)  # does the corrective one only
    preventive.refresh_from_db()
    assert preventive.status == "open"
    events = Event.objects.count()
    error = refused("actions_open", _close, ncr, quality_engineer)
    assert error.status == 409 and error.errors == {"actions": [preventive.pk]}
    ncr.refresh_from_db()
    assert ncr.status == "verification" and Event.objects.count() == events


def test_closure_needs_a_meaning(line_engineer, quality_engineer):
    ncr = walk_to(open_ncr(line_engineer), "verification", by=line_engineer)
    error = refused(
        "invalid",
        ncrs.close_nonconformance,
        ncr,
        password=PASSWORD,
        meaning="  ",
        by=quality_engineer,
    )
    assert error.status == 400 and "meaning" in error.errors


def test_verification_waits_for_the_corrective_actions(line_engineer):
    ncr = walk_to(open_ncr(line_engineer), "actions", by=line_engineer)
    open_one = ncr.actions.get()
    error = refused("actions_open", _verification, ncr, line_engineer)
    assert error.errors == {"actions": [open_one.pk]}
    ncr.refresh_from_db()
    assert ncr.status == "actions" and ncr.verification == ""


def test_a_failed_verification_sends_it_back_to_actions(line_engineer):
    ncr = walk_to(open_ncr(line_engineer), "verification", by=line_engineer)
    refused("reason_required", ncrs.reopen_actions, ncr, reason=" ", by=line_engineer)
    ncr = ncrs.reopen_actions(ncr, reason="overhang came back on batch 4", by=line_engineer)
    ncr.refresh_from_db()
    assert ncr.status == "actions" and ncr.verification == "" and ncr.verified_by is None
    event = Event.objects.get(subject=ncr.code, verb="ncr_actions_reopened")
    assert event.reason == "overhang came back on batch 4"
    assert event.data["verification"] == "Overhang under 0.1 mm on 200 cells since"


def test_an_action_done_twice_is_refused(line_engineer):
    ncr = walk_to(open_ncr(line_engineer), "actions", by=line_engineer)
    action = ncr.actions.get()
    ncrs.complete_action(action, by=line_engineer)
    refused("invalid_transition", ncrs.complete_action, action, by=line_engineer)


def test_an_action_cannot_be_done_before_actions_start_or_after_closure(
    line_engineer, quality_engineer
):
    ncr = walk_to(open_ncr(line_engineer), "actions", by=line_engineer)
    action = ncr.actions.get()
    ncrs.cancel_nonconformance(ncr, reason="raised twice", by=quality_engineer)
    refused("invalid_transition", ncrs.complete_action, action, by=line_engineer)
    action.refresh_from_db()
    assert action.status == "open"


@pytest.mark.parametrize("status", ["open", "contained", "analysed", "actions", "verification"])
def test_quality_cancels_from_any_open_state_with_a_reason(line_engineer, quality_engineer, status):
    ncr = walk_to(open_ncr(line_engineer), status, by=line_engineer)
    refused("reason_required", ncrs.cancel_nonconformance, ncr, reason="", by=quality_engineer)
    refused("permission_denied", _cancel, ncr, line_engineer)
    ncr = ncrs.cancel_nonconformance(ncr, reason="same as NCR-0007", by=quality_engineer)
    ncr.refresh_from_db()
    assert ncr.status == "cancelled" and ncr.cancel_reason == "same as NCR-0007"
    assert ncr.cancelled_by == quality_engineer
    assert trail(ncr)[-1] == "ncr_cancelled"


def test_an_operator_cannot_open_or_work_an_ncr(operator, line_engineer):
    refused("permission_denied", open_ncr, operator)
    assert not NonConformance.objects.exists()
    ncr = open_ncr(line_engineer)
    refused("permission_denied", _containment, ncr, operator)


def test_opening_needs_a_title_and_a_description(line_engineer):
    error = refused("invalid", open_ncr, line_engineer, title=" ", description="")
    assert set(error.errors) == {"title", "description"}
    assert (
        not NonConformance.objects.exists()
        and not Event.objects.filter(subject_type="ncr").exists()
    )


def test_a_root_cause_outside_the_six_ms_is_refused(line_engineer):
    ncr = walk_to(open_ncr(line_engineer), "contained", by=line_engineer)
    error = refused(
        "invalid", ncrs.record_root_cause, ncr, category="luck", five_whys="", by=line_engineer
    )
    assert set(error.errors) == {"category", "five_whys"}
    ncr.refresh_from_db()
    assert ncr.status == "contained"


def test_a_revised_root_cause_keeps_the_previous_one_in_the_trail(line_engineer):
    ncr = walk_to(open_ncr(line_engineer), "analysed", by=line_engineer)
    ncrs.record_root_cause(ncr, category="material", five_whys="Separator lot", by=line_engineer)
    ncr.refresh_from_db()
    assert (ncr.status, ncr.root_cause) == ("analysed", "material")
    event = Event.objects.get(subject=ncr.code, verb="ncr_root_cause_revised")
    assert event.data["previous"]["category"] == "machine"


# ---------------------------------------------------------------- containment


def test_holds_join_and_leave_the_containment_with_an_event_each(
    proto_batch, line_engineer, batch_hold
):
    cell = proto_batch.cells.order_by("position").first()
    cell_hold = hold_cell(cell, by=line_engineer, reason="camera: overhang")
    ncr = open_ncr(line_engineer, holds=[batch_hold])
    ncrs.add_hold(ncr, cell_hold, by=line_engineer)
    assert set(ncr.holds.all()) == {batch_hold, cell_hold}
    refused("hold_already_covered", ncrs.add_hold, ncr, cell_hold, by=line_engineer)
    ncrs.remove_hold(ncr, batch_hold, by=line_engineer, reason="another NCR covers it")
    assert list(ncr.holds.all()) == [cell_hold]
    refused("hold_not_covered", ncrs.remove_hold, ncr, batch_hold, by=line_engineer)
    added, removed = (
        Event.objects.filter(subject=ncr.code, verb__in=["ncr_hold_added", "ncr_hold_removed"])
        .order_by("id")
        .values_list("verb", "data")
    )
    assert added == (
        "ncr_hold_added",
        {"hold": cell_hold.pk, "scope": "cell", "target": cell.serial},
    )
    assert removed[0] == "ncr_hold_removed" and removed[1]["hold"] == batch_hold.pk


def test_a_closed_ncr_keeps_its_holds(line_engineer, quality_engineer, batch_hold):
    ncr = walk_to(
        open_ncr(line_engineer, holds=[batch_hold]),
        "closed",
        by=line_engineer,
        signer=quality_engineer,
    )
    refused("invalid_transition", ncrs.remove_hold, ncr, batch_hold, by=line_engineer)
    assert list(ncr.holds.all()) == [batch_hold]


def test_a_correction_keeps_the_old_and_new_values_in_the_trail(line_engineer, quality_engineer):
    ncr = open_ncr(line_engineer)
    pilot = Line.objects.exclude(code="proto").first()
    ncrs.edit_nonconformance(
        ncr, title="Cathode overhang", line=pilot, step="stacking", by=line_engineer
    )
    ncr.refresh_from_db()
    assert (ncr.title, ncr.line) == ("Cathode overhang", pilot)
    event = Event.objects.get(subject=ncr.code, verb="ncr_edited")
    # The step did not change: only what did is in the event.
    assert event.data == {
        "title": ["Cathode misaligned on the stack", "Cathode overhang"],
        "line": ["proto", pilot.code],
    }
    refused("invalid", ncrs.edit_nonconformance, ncr, title=" ", by=line_engineer)
    walk_to(ncr, "cancelled", by=line_engineer, signer=quality_engineer)
    refused("invalid_transition", ncrs.edit_nonconformance, ncr, title="x", by=line_engineer)
    ncr.refresh_from_db()
    assert ncr.title == "Cathode overhang"
