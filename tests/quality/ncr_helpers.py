"""Walking a non-conformance report through its services to a chosen status, for the NCR tests."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

from batches.models import Hold
from lines.models import Line
from quality import nonconformance as ncrs
from quality.models import NonConformance

PASSWORD = "a-long-test-password"  # the personas' (tests/conftest.py)
ORDER = ["open", "contained", "analysed", "actions", "verification", "closed"]


def open_ncr(by: Any, *, holds: list[Hold] = (), **fields: Any) -> NonConformance:
    return ncrs.open_nonconformance(
        title=fields.pop("title", "Cathode misaligned on the stack"),
        description=fields.pop("description", "Overhang 0.4 mm on three cells of the batch."),
        line=fields.pop("line", None) or Line.objects.get(code="proto"),
        step=fields.pop("step", "stacking"),
        holds=holds,
        by=by,
        **fields,
    )


def walk_to(ncr: NonConformance, status: str, *, by: Any, signer: Any = None) -> NonConformance:
    """Take `ncr` forward through each status up to `status` (or cancel it), the way an engineer
    would: containment, root cause, one corrective action done, verification, signed closure."""
    if status == "cancelled":
        return ncrs.cancel_nonconformance(ncr, reason="raised twice", by=signer or by)
    steps = ORDER[ORDER.index(ncr.status) + 1 : ORDER.index(status) + 1]
    for step in steps:
        if step == "contained":
            ncr = ncrs.record_containment(ncr, containment="Batch held at stacking", by=by)
        elif step == "analysed":
            ncr = ncrs.record_root_cause(
                ncr, category="machine", five_whys="Why? The gripper slipped. Why? Worn pad.", by=by
            )
        elif step == "actions":
            ncrs.add_action(
                ncr,
                kind="corrective",
                description="Replace the gripper pad",
                owner=by,
                due_date=timezone.localdate() + timedelta(days=14),
                by=by,
            )
        elif step == "verification":
            for action in ncr.actions.filter(status="open", kind="corrective"):
                ncrs.complete_action(action, by=by, note="pad replaced")
            ncr = ncrs.record_verification(
                ncr, verification="Overhang under 0.1 mm on 200 cells since", by=by
            )
        elif step == "closed":
            ncr = ncrs.close_nonconformance(
                ncr, password=PASSWORD, meaning=ncrs.DEFAULT_SIGNATURE_MEANING, by=signer or by
            )
        ncr.refresh_from_db()
    return ncr
