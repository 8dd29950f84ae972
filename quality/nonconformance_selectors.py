"""Reads of non-conformance reports: the list with its action counts, one NCR with everything
its page and the API show."""

from __future__ import annotations

from django.db.models import Count, Prefetch, Q, QuerySet
from django.utils import timezone

from audit.models import Event
from batches.models import Hold
from batches.selectors import holds_with_details
from quality.models import NonConformance, NonConformanceAction

# The list's status filter: one status, or every status short of closed and cancelled.
ACTIVE = "active"


def nonconformance_list(*, status: str = "", line: str = "") -> QuerySet:
    """NCRs newest first with their holds and open and overdue actions counted, in one query."""
    ncrs = NonConformance.objects.all()
    if status == ACTIVE:
        ncrs = ncrs.filter(status__in=NonConformance.ACTIVE)
    elif status:
        ncrs = ncrs.filter(status=status)
    if line:
        ncrs = ncrs.filter(line__code=line)
    open_action = Q(actions__status=NonConformanceAction.Status.OPEN)
    return (
        ncrs.select_related("line", "opened_by")
        .annotate(
            hold_count=Count("holds", distinct=True),
            action_count=Count("actions", distinct=True),
            open_actions=Count("actions", filter=open_action, distinct=True),
            overdue_actions=Count(
                "actions",
                filter=open_action & Q(actions__due_date__lt=timezone.localdate()),
                distinct=True,
            ),
        )
        .order_by("-year", "-number")
    )


def nonconformance_detail(code: str) -> NonConformance:
    """One NCR with its people, holds (as the queue shows them) and actions. Raises DoesNotExist."""
    actions = NonConformanceAction.objects.select_related("owner", "done_by", "created_by")
    return (
        NonConformance.objects.select_related(
            "line",
            "opened_by",
            "opened_from",
            "contained_by",
            "analysed_by",
            "verified_by",
            "signed_by",
            "cancelled_by",
        )
        .prefetch_related(
            Prefetch("holds", queryset=holds_with_details(Hold.objects.order_by("id"))),
            Prefetch("actions", queryset=actions.order_by("due_date", "id")),
        )
        .get(code=code)
    )


def nonconformance_trail(ncr: NonConformance) -> QuerySet:
    """The NCR's audit events, oldest first."""
    return Event.objects.filter(subject_type="ncr", subject=ncr.code).order_by("occurred_at", "id")
