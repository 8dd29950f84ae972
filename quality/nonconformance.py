"""Every state change of a non-conformance report (NCR) goes through these services.

Each takes its actor as `by`, locks the NCR, checks the transition declared beside
NonConformance.Status, and appends an audit event (subject_type "ncr", subject its code) in the
same transaction. Closing is signed: the signer re-enters their password, and the signature's
meaning, signer and time are kept on the NCR and in its closing event.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from django.contrib.auth import authenticate
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from audit.services import record_event
from batches.models import Hold
from core import roles
from core.errors import DomainError, check_transition, require_reason
from core.locks import lock_names
from lines.models import Line, StationKind
from quality.models import NonConformance, NonConformanceAction

Status = NonConformance.Status
SUBJECT = "ncr"
DEFAULT_SIGNATURE_MEANING = "Approved: closed after verification"


# ---------------------------------------------------------------- opening


@dataclass
class Draft:
    """What a new NCR opened from a hold starts with; the engineer edits it before opening."""

    title: str
    description: str
    line: Line | None
    step: str
    hold: Hold


def draft_from_hold(hold: Hold) -> Draft:
    """An NCR's fields filled in from a hold: its reason, and the line and step where the hold
    points (its batch's or press station's line, the step of the run that failed)."""
    line = None
    if hold.batch_id is not None:
        line = hold.batch.line
    elif hold.station_id is not None:
        line = hold.station.line
    else:
        cell = hold.cells.select_related("batch__line").first()
        line = cell.batch.line if cell is not None else None
    step = ""
    if hold.run_id is not None:
        step = hold.run.step.station_kind
    elif hold.station_id is not None:
        step = hold.station.kind
    first_line = hold.reason.strip().splitlines()[0] if hold.reason.strip() else ""
    title = f"{hold.get_scope_display()} {hold.target}: {first_line}"[:200]
    return Draft(title=title, description=hold.reason, line=line, step=step, hold=hold)


@transaction.atomic
def open_nonconformance(
    *,
    title: str,
    description: str,
    line: Line,
    by: Any,
    step: str = "",
    holds: Iterable[Hold] = (),
    opened_from: Hold | None = None,
) -> NonConformance:
    """Open an NCR with the next code of the year (NCR-<year>-<nnnn>), covering `holds` (and the
    hold it is opened from)."""
    _require(by, roles.OPEN_NCR, pgettext("refused action", "open non-conformance reports"))
    errors = {}
    if not title or not title.strip():
        errors["title"] = ["A title is required."]
    if not description or not description.strip():
        errors["description"] = ["A description is required."]
    if step and step not in StationKind.values:
        errors["step"] = [f"No step {step}."]
    if errors:
        raise DomainError("invalid", _("The report is not complete."), status=400, errors=errors)
    covered = {hold.pk: hold for hold in holds}
    if opened_from is not None:
        covered.setdefault(opened_from.pk, opened_from)
    now = timezone.now()
    year = timezone.localdate(now).year
    ncr = NonConformance.objects.create(
        **_next_number(year),
        title=title.strip(),
        description=description.strip(),
        line=line,
        step=step,
        opened_from=opened_from,
        opened_by=by,
        opened_at=now,
    )
    ncr.holds.add(*covered.values())
    record_event(
        actor=by,
        verb="ncr_opened",
        subject_type=SUBJECT,
        subject=ncr.code,
        data={
            "title": ncr.title,
            "line": line.code,
            "step": step,
            "holds": sorted(covered),
            "opened_from": opened_from.pk if opened_from is not None else None,
        },
    )
    return ncr


@transaction.atomic
def edit_nonconformance(ncr: NonConformance, *, by: Any, **changes: Any) -> NonConformance:
    """Correct what the report says (title, description, line, step) until it is closed or
    cancelled; the event keeps each field's old and new value."""
    ncr = _locked(ncr, by)
    _require_active(ncr, pgettext("refused action", "edit"))
    unknown = set(changes) - {"title", "description", "line", "step"}
    if unknown:
        raise TypeError(f"Not editable: {', '.join(sorted(unknown))}")
    errors = {}
    for field in ("title", "description"):
        if field in changes:
            changes[field] = (changes[field] or "").strip()
            if not changes[field]:
                errors[field] = [_("Required.")]
    if changes.get("step") and changes["step"] not in StationKind.values:
        errors["step"] = [f"No step {changes['step']}."]
    if errors:
        raise DomainError("invalid", _("The report is not complete."), status=400, errors=errors)
    changed = {}
    for field, value in changes.items():
        old = getattr(ncr, field)
        if old != value:
            changed[field] = [old.code, value.code] if field == "line" else [old, value]
            setattr(ncr, field, value)
    if changed:
        ncr.save(update_fields=list(changed))
        record_event(
            actor=by, verb="ncr_edited", subject_type=SUBJECT, subject=ncr.code, data=changed
        )
    return ncr


def _next_number(year: int) -> dict[str, Any]:
    """The year's next number, gapless: two engineers opening at once queue on the year's lock
    (held to the end of the transaction), so the second reads the first's number once it is
    committed. The unique constraint on (year, number) stands behind it."""
    lock_names([f"quality.ncr_number.{year}"])
    last = (
        NonConformance.objects.filter(year=year)
        .order_by("-number")
        .values_list("number", flat=True)
        .first()
    )
    number = (last or 0) + 1
    return {"year": year, "number": number, "code": f"NCR-{year}-{number:04d}"}


# ---------------------------------------------------------------- containment


@transaction.atomic
def add_hold(ncr: NonConformance, hold: Hold, *, by: Any) -> NonConformance:
    """Let the NCR cover one more hold, while it is not closed or cancelled."""
    ncr = _locked(ncr, by)
    _require_active(ncr, pgettext("refused action", "add a hold to"))
    if ncr.holds.filter(pk=hold.pk).exists():
        raise DomainError(
            "hold_already_covered",
            _("%(ncr)s already covers hold %(hold)s.") % {"ncr": ncr.code, "hold": hold.pk},
        )
    ncr.holds.add(hold)
    record_event(
        actor=by,
        verb="ncr_hold_added",
        subject_type=SUBJECT,
        subject=ncr.code,
        data={"hold": hold.pk, "scope": hold.scope, "target": hold.target},
    )
    return ncr


@transaction.atomic
def remove_hold(ncr: NonConformance, hold: Hold, *, by: Any, reason: str = "") -> NonConformance:
    """Take a hold out of the NCR's containment, while it is not closed or cancelled."""
    ncr = _locked(ncr, by)
    _require_active(ncr, pgettext("refused action", "remove a hold from"))
    if not ncr.holds.filter(pk=hold.pk).exists():
        raise DomainError(
            "hold_not_covered",
            _("%(ncr)s does not cover hold %(hold)s.") % {"ncr": ncr.code, "hold": hold.pk},
        )
    ncr.holds.remove(hold)
    record_event(
        actor=by,
        verb="ncr_hold_removed",
        subject_type=SUBJECT,
        subject=ncr.code,
        reason=reason.strip(),
        data={"hold": hold.pk, "scope": hold.scope, "target": hold.target},
    )
    return ncr


@transaction.atomic
def record_containment(ncr: NonConformance, *, containment: str, by: Any) -> NonConformance:
    """Write down what stops the problem spreading (beside the holds covered): open -> contained."""
    ncr = _locked(ncr, by)
    check_transition(NonConformance, ncr.status, Status.CONTAINED)
    _required_text("containment", containment)
    ncr.containment = containment.strip()
    ncr.contained_by, ncr.contained_at = by, timezone.now()
    return _moved(
        ncr,
        Status.CONTAINED,
        by=by,
        fields=["containment", "contained_by", "contained_at"],
        data={"containment": ncr.containment, "holds": _hold_ids(ncr)},
    )


# ---------------------------------------------------------------- root cause


@transaction.atomic
def record_root_cause(
    ncr: NonConformance, *, category: str, five_whys: str, by: Any
) -> NonConformance:
    """The root cause's category (one of the six M's) and the five whys that reached it:
    contained -> analysed. Once analysed, and until actions start, it may be written again."""
    ncr = _locked(ncr, by)
    revising = ncr.status == Status.ANALYSED
    if not revising:
        check_transition(NonConformance, ncr.status, Status.ANALYSED)
    errors = {}
    if category not in NonConformance.RootCause.values:
        errors["category"] = [f"Not one of {', '.join(NonConformance.RootCause.values)}."]
    if not five_whys or not five_whys.strip():
        errors["five_whys"] = ["The five whys are required."]
    if errors:
        raise DomainError(
            "invalid", _("The root cause is not complete."), status=400, errors=errors
        )
    previous = {"category": ncr.root_cause, "five_whys": ncr.five_whys}
    ncr.root_cause, ncr.five_whys = category, five_whys.strip()
    ncr.analysed_by, ncr.analysed_at = by, timezone.now()
    fields = ["root_cause", "five_whys", "analysed_by", "analysed_at"]
    data = {"category": category, "five_whys": ncr.five_whys}
    if revising:
        ncr.save(update_fields=fields)
        record_event(
            actor=by,
            verb="ncr_root_cause_revised",
            subject_type=SUBJECT,
            subject=ncr.code,
            data={**data, "previous": previous},
        )
        return ncr
    return _moved(ncr, Status.ANALYSED, by=by, fields=fields, data=data)


# ---------------------------------------------------------------- actions


@transaction.atomic
def add_action(
    ncr: NonConformance,
    *,
    kind: str,
    description: str,
    owner: Any,
    due_date: date,
    by: Any,
) -> NonConformanceAction:
    """Plan a corrective or preventive action with its owner and due date. The first one starts
    the actions (analysed -> actions); more may follow while they are under way."""
    ncr = _locked(ncr, by)
    # Only forward: an action added at verification would undo it without saying why.
    _require_status(
        ncr, (Status.ANALYSED, Status.ACTIONS), pgettext("refused action", "add an action to")
    )
    errors = {}
    if kind not in NonConformanceAction.Kind.values:
        errors["kind"] = [f"Not one of {', '.join(NonConformanceAction.Kind.values)}."]
    if not description or not description.strip():
        errors["description"] = ["A description is required."]
    if owner is None or not owner.is_active:
        errors["owner"] = ["The owner must be an active user."]
    if errors:
        raise DomainError("invalid", _("The action is not complete."), status=400, errors=errors)
    action = NonConformanceAction.objects.create(
        nonconformance=ncr,
        kind=kind,
        description=description.strip(),
        owner=owner,
        due_date=due_date,
        created_by=by,
    )
    data = {
        "action": action.pk,
        "kind": kind,
        "description": action.description,
        "owner": owner.get_username(),
        "due_date": due_date.isoformat(),
    }
    if ncr.status == Status.ACTIONS:
        record_event(
            actor=by, verb="ncr_action_added", subject_type=SUBJECT, subject=ncr.code, data=data
        )
    else:
        _moved(ncr, Status.ACTIONS, by=by, fields=[], data=data, verb="ncr_action_added")
    return action


@transaction.atomic
def complete_action(
    action: NonConformanceAction, *, by: Any, note: str = ""
) -> NonConformanceAction:
    """Mark an action done, with who, when and a note; while its NCR's actions are under way
    or being verified."""
    ncr = _locked(action.nonconformance, by)
    action = NonConformanceAction.objects.select_for_update().get(pk=action.pk)
    _require_status(
        ncr,
        (Status.ACTIONS, Status.VERIFICATION),
        pgettext("refused action", "complete an action of"),
    )
    check_transition(NonConformanceAction, action.status, NonConformanceAction.Status.DONE)
    action.status = NonConformanceAction.Status.DONE
    action.done_by, action.done_at, action.done_note = by, timezone.now(), note.strip()
    action.save(update_fields=["status", "done_by", "done_at", "done_note"])
    record_event(
        actor=by,
        verb="ncr_action_done",
        subject_type=SUBJECT,
        subject=ncr.code,
        reason=action.done_note,
        data={"action": action.pk, "kind": action.kind},
    )
    return action


# ---------------------------------------------------------------- verification


@transaction.atomic
def record_verification(ncr: NonConformance, *, verification: str, by: Any) -> NonConformance:
    """How the actions were seen to work: actions -> verification. The corrective actions must
    be done; a preventive one (an FMEA to update, a supplier audit) may still run, but closing
    waits for it."""
    ncr = _locked(ncr, by)
    check_transition(NonConformance, ncr.status, Status.VERIFICATION)
    _required_text("verification", verification)
    open_corrective = list(
        ncr.actions.filter(
            kind=NonConformanceAction.Kind.CORRECTIVE, status=NonConformanceAction.Status.OPEN
        ).values_list("pk", flat=True)
    )
    if open_corrective:
        raise DomainError(
            "actions_open",
            _("Corrective actions are still open; they must be done before verification."),
            errors={"actions": open_corrective},
        )
    ncr.verification = verification.strip()
    ncr.verified_by, ncr.verified_at = by, timezone.now()
    return _moved(
        ncr,
        Status.VERIFICATION,
        by=by,
        fields=["verification", "verified_by", "verified_at"],
        data={"verification": ncr.verification},
    )


@transaction.atomic
def reopen_actions(ncr: NonConformance, *, reason: str, by: Any) -> NonConformance:
    """The verification found the actions did not work: back to actions, the verification
    cleared (the trail keeps it)."""
    ncr = _locked(ncr, by)
    _require_status(
        ncr, (Status.VERIFICATION,), pgettext("refused action", "reopen the actions of")
    )
    require_reason(reason)
    previous = ncr.verification
    ncr.verification, ncr.verified_by, ncr.verified_at = "", None, None
    return _moved(
        ncr,
        Status.ACTIONS,
        by=by,
        fields=["verification", "verified_by", "verified_at"],
        reason=reason.strip(),
        data={"verification": previous},
        verb="ncr_actions_reopened",
    )


# ---------------------------------------------------------------- closure


def close_nonconformance(
    ncr: NonConformance,
    *,
    password: str,
    meaning: str,
    by: Any,
    request: HttpRequest | None = None,
) -> NonConformance:
    """Close a verified NCR with the signer's electronic signature: their password re-entered,
    the meaning of the signature, who and when, kept on the NCR and in the trail.

    Needs quality's permission, every action done and the verification written. Given the
    request, the password is checked through Django's authenticate, as a sign-in is: a wrong one
    counts toward django-axes' lockout of the address, and a locked-out address is refused
    (429). The password is checked before the transaction opens, so a failure's count stays
    while nothing of the NCR is written.
    """
    _closing_refusal(ncr, by, meaning)
    check_signature(by, password, request=request)
    return _close(ncr, meaning=meaning, by=by)


def check_signature(user: Any, password: str, *, request: HttpRequest | None = None) -> None:
    """Refuse (403 `signature_invalid`) unless `password` is the user's own."""
    if request is not None:
        signer = authenticate(request, username=user.get_username(), password=password or "")
        if getattr(request, "axes_locked_out", False):
            raise DomainError(
                "throttled",
                _("Too many failed sign-ins or signatures from this address; try again later."),
                status=429,
            )
    else:
        signer = user if user.is_active and user.check_password(password or "") else None
    if signer is None or signer.pk != user.pk:
        raise DomainError(
            "signature_invalid",
            _("The password does not match: the closure is not signed."),
            status=403,
            errors={"password": ["Wrong password."]},
        )


@transaction.atomic
def _close(ncr: NonConformance, *, meaning: str, by: Any) -> NonConformance:
    ncr = _locked(ncr, by)
    _closing_refusal(ncr, by, meaning)  # again, under the lock: it may have moved meanwhile
    now = timezone.now()
    ncr.signature_meaning = meaning.strip()
    ncr.signed_by, ncr.signed_at = by, now
    signature = {
        "meaning": ncr.signature_meaning,
        "signed_by": by.get_username(),
        "signer_name": by.get_full_name(),
        "signed_at": now.isoformat(),
        "method": "password re-entered",
    }
    return _moved(
        ncr,
        Status.CLOSED,
        by=by,
        fields=["signature_meaning", "signed_by", "signed_at"],
        reason=ncr.signature_meaning,
        data={"signature": signature},
    )


def _closing_refusal(ncr: NonConformance, by: Any, meaning: str) -> None:
    _require(by, roles.CLOSE_NCR, pgettext("refused action", "close non-conformance reports"))
    check_transition(NonConformance, ncr.status, Status.CLOSED)
    if not meaning or not meaning.strip():
        raise DomainError(
            "invalid",
            _("The signature's meaning is required."),
            status=400,
            errors={"meaning": ["The signature's meaning is required."]},
        )
    if len(meaning.strip()) > NonConformance._meta.get_field("signature_meaning").max_length:
        raise DomainError(
            "invalid",
            _("The signature's meaning is too long."),
            status=400,
            errors={"meaning": ["At most 200 characters."]},
        )
    open_actions = list(
        ncr.actions.filter(status=NonConformanceAction.Status.OPEN).values_list("pk", flat=True)
    )
    if open_actions:
        raise DomainError(
            "actions_open",
            _("%(count)s action(s) still open: every action must be done to close.")
            % {"count": len(open_actions)},
            errors={"actions": open_actions},
        )
    if not ncr.verification:
        raise DomainError("verification_missing", _("The verification must be written to close."))


@transaction.atomic
def cancel_nonconformance(ncr: NonConformance, *, reason: str, by: Any) -> NonConformance:
    """Cancel an NCR that is not closed (a duplicate, a false alarm), with the reason; quality's
    decision, like closing."""
    _require(by, roles.CLOSE_NCR, pgettext("refused action", "cancel non-conformance reports"))
    ncr = _locked(ncr, by)
    check_transition(NonConformance, ncr.status, Status.CANCELLED)
    require_reason(reason)
    ncr.cancel_reason = reason.strip()
    ncr.cancelled_by, ncr.cancelled_at = by, timezone.now()
    return _moved(
        ncr,
        Status.CANCELLED,
        by=by,
        fields=["cancel_reason", "cancelled_by", "cancelled_at"],
        reason=ncr.cancel_reason,
    )


# ---------------------------------------------------------------- shared


def _locked(ncr: NonConformance, by: Any) -> NonConformance:
    """The NCR's row locked for this transaction, after checking `by` may work on NCRs."""
    _require(by, roles.EDIT_NCR, pgettext("refused action", "work on non-conformance reports"))
    return NonConformance.objects.select_for_update().get(pk=ncr.pk)


def _require(by: Any, permission: str, doing: str) -> None:
    if isinstance(by, str) or not by.has_perm(permission):
        raise DomainError(
            "permission_denied",
            _("Your roles do not allow you to %(doing)s.") % {"doing": doing},
            status=403,
        )


def _require_active(ncr: NonConformance, doing: str) -> None:
    _require_status(ncr, NonConformance.ACTIVE, doing)


def _require_status(ncr: NonConformance, statuses: Iterable[str], doing: str) -> None:
    if ncr.status not in statuses:
        raise DomainError(
            "invalid_transition",
            _("Cannot %(doing)s %(ncr)s: it is %(status)s.")
            % {"doing": doing, "ncr": ncr.code, "status": ncr.get_status_display().lower()},
        )


def _required_text(field: str, text: str) -> None:
    if not text or not text.strip():
        raise DomainError(
            "invalid", _("The request is not valid."), status=400, errors={field: [_("Required.")]}
        )


def _hold_ids(ncr: NonConformance) -> list[int]:
    return sorted(ncr.holds.values_list("pk", flat=True))


def _moved(
    ncr: NonConformance,
    status: str,
    *,
    by: Any,
    fields: list[str],
    reason: str = "",
    data: dict | None = None,
    verb: str = "",
) -> NonConformance:
    """Save the NCR in its new status (the transition checked by the caller) and record it."""
    old, ncr.status = ncr.status, status
    ncr.save(update_fields=["status", *fields])
    record_event(
        actor=by,
        verb=verb or f"ncr_{status}",
        subject_type=SUBJECT,
        subject=ncr.code,
        reason=reason,
        data={"from": old, "to": status, **(data or {})},
    )
    return ncr
