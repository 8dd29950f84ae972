"""The engineers' API of station results not applied: list them, send rejected ones again."""

from __future__ import annotations

import django_filters
from django.db.models import Q, QuerySet
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework.request import Request
from rest_framework.response import Response

from core import roles
from core.api import EngineerAPIView, EngineerListView, engineer_errors
from core.errors import NotFound
from stations import intake, selectors
from stations.api import serializers as s
from stations.models import InboxEntry

# ---------------------------------------------------------------- station results not applied


class UnappliedFilter(django_filters.FilterSet):
    """Validates and documents the filters; selectors.unapplied_results applies them."""

    state = django_filters.ChoiceFilter(
        choices=list(selectors.UNAPPLIED.items()),
        method="_applied_by_the_selector",
        help_text="rejected (the default, newest first) or pending (oldest first)",
    )
    line = django_filters.CharFilter(method="_applied_by_the_selector")
    station = django_filters.CharFilter(method="_applied_by_the_selector")
    reason = django_filters.CharFilter(method="_applied_by_the_selector")

    class Meta:
        model = InboxEntry
        fields = ["state", "line", "station", "reason"]

    def _applied_by_the_selector(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset


@extend_schema_view(
    get=extend_schema(
        responses={
            200: s.UnappliedResultSerializer(many=True),
            **engineer_errors(400, 401, 403, 404),
        }
    )
)
class UnappliedResultListView(EngineerListView):
    """Station results the workers did not apply: rejected ones with the reason, or those still
    pending (waiting for an earlier step's result, retrying, queued)."""

    permissions = {"GET": roles.VIEW_STATION_RESULTS}
    serializer_class = s.UnappliedResultSerializer
    filterset_class = UnappliedFilter

    def get_queryset(self) -> QuerySet:
        query = self.request.query_params
        return selectors.unapplied_results(
            state=query.get("state") or "rejected",
            line=query.get("line", ""),
            station=query.get("station", ""),
            reason=query.get("reason", ""),
        )


class UnappliedResultRequeueView(EngineerAPIView):
    permissions = {"POST": roles.REQUEUE}

    @extend_schema(
        request=s.RequeueRequestSerializer,
        responses={200: s.RequeueResponseSerializer, **engineer_errors(400, 401, 403, 404, 415)},
        description="Send rejected results to the workers again once what rejected them is put "
        "right: each is applied as if it had just arrived, or rejected again with the reason of "
        "now. Results no longer rejected are left alone; an unknown one is 404 and nothing is sent.",
    )
    def post(self, request: Request) -> Response:
        body = s.RequeueRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        wanted = {(r["station"], r["event_id"]) for r in body.validated_data["results"]}
        which = Q()
        for station, event_id in wanted:
            which |= Q(station__code=station, event_id=event_id)
        found = {
            (station, event_id): pk
            for pk, station, event_id in InboxEntry.objects.filter(which).values_list(
                "pk", "station__code", "event_id"
            )
        }
        if missing := sorted(wanted - set(found)):
            station, event_id = missing[0]
            raise NotFound(
                "not_found",
                _("No result %(event_id)s from station %(station)s (%(unknown)s unknown).")
                % {"event_id": event_id, "station": station, "unknown": len(missing)},
            )
        sent = intake.requeue_rejected(
            found.values(), by=request.user, reason=body.validated_data["reason"]
        )
        return Response({"requeued": sent})
