"""The engineers' API of non-conformance reports: list, open, read, and one endpoint per
transition. Input serializers only validate; every change is a quality.nonconformance service,
whose refusals (DomainError) the API answers in the JSON error format."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import django_filters
from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from batches.api.serializers import HoldSerializer
from batches.models import Hold
from core import roles
from core.api import ApiErrorSerializer, EngineerAPIView, EngineerListView, engineer_errors
from core.errors import DomainError, NotFound
from lines.models import Line, StationKind
from quality import nonconformance as services
from quality import nonconformance_selectors as selectors
from quality.models import NonConformance, NonConformanceAction

MAX_HOLDS = 100  # holds named in one request

# ---------------------------------------------------------------- bodies out


def _username(user: Any) -> str | None:
    return user.get_username() if user is not None else None


class NcrActionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=NonConformanceAction.Kind.choices)
    description = serializers.CharField()
    owner = serializers.CharField(source="owner.username")
    due_date = serializers.DateField()
    overdue = serializers.BooleanField(help_text="Open and past its due date")
    status = serializers.ChoiceField(choices=NonConformanceAction.Status.choices)
    done_by = serializers.SerializerMethodField()
    done_at = serializers.DateTimeField(allow_null=True)
    done_note = serializers.CharField(allow_blank=True)

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_done_by(self, action: NonConformanceAction) -> str | None:
        return _username(action.done_by)


class NcrSerializer(serializers.Serializer):
    """A row of the list."""

    code = serializers.CharField(help_text="NCR-<year>-<number>")
    title = serializers.CharField()
    status = serializers.ChoiceField(choices=NonConformance.Status.choices)
    line = serializers.CharField(source="line.code")
    step = serializers.ChoiceField(
        choices=StationKind.choices, allow_blank=True, help_text="Where it was found; may be empty"
    )
    opened_by = serializers.CharField(source="opened_by.username")
    opened_at = serializers.DateTimeField()
    holds = serializers.IntegerField(source="hold_count", help_text="Holds it covers")
    actions = serializers.IntegerField(source="action_count")
    open_actions = serializers.IntegerField()
    overdue_actions = serializers.IntegerField(help_text="Open actions past their due date")


class SignatureSerializer(serializers.Serializer):
    meaning = serializers.CharField(source="signature_meaning")
    signed_by = serializers.CharField(source="signed_by.username")
    signed_at = serializers.DateTimeField()


class NcrDetailSerializer(serializers.Serializer):
    code = serializers.CharField()
    title = serializers.CharField()
    description = serializers.CharField()
    status = serializers.ChoiceField(choices=NonConformance.Status.choices)
    next = serializers.SerializerMethodField(help_text="The statuses it may go to from here")
    line = serializers.CharField(source="line.code")
    step = serializers.ChoiceField(choices=StationKind.choices, allow_blank=True)
    opened_by = serializers.CharField(source="opened_by.username")
    opened_at = serializers.DateTimeField()
    opened_from = serializers.IntegerField(
        source="opened_from_id", allow_null=True, help_text="The hold it was opened from"
    )
    holds = HoldSerializer(many=True, help_text="The holds it covers (containment)")
    containment = serializers.CharField(allow_blank=True)
    contained_by = serializers.SerializerMethodField()
    contained_at = serializers.DateTimeField(allow_null=True)
    root_cause = serializers.ChoiceField(
        choices=NonConformance.RootCause.choices, allow_blank=True, help_text="One of the six M's"
    )
    five_whys = serializers.CharField(allow_blank=True)
    analysed_by = serializers.SerializerMethodField()
    analysed_at = serializers.DateTimeField(allow_null=True)
    actions = NcrActionSerializer(many=True)
    verification = serializers.CharField(allow_blank=True)
    verified_by = serializers.SerializerMethodField()
    verified_at = serializers.DateTimeField(allow_null=True)
    signature = serializers.SerializerMethodField(help_text="The closure's; null until closed")
    cancel_reason = serializers.CharField(allow_blank=True)
    cancelled_by = serializers.SerializerMethodField()
    cancelled_at = serializers.DateTimeField(allow_null=True)

    @extend_schema_field(
        serializers.ListField(child=serializers.ChoiceField(NonConformance.Status.choices))
    )
    def get_next(self, ncr: NonConformance) -> list[str]:
        return sorted(NonConformance.TRANSITIONS[ncr.status])

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_contained_by(self, ncr: NonConformance) -> str | None:
        return _username(ncr.contained_by)

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_analysed_by(self, ncr: NonConformance) -> str | None:
        return _username(ncr.analysed_by)

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_verified_by(self, ncr: NonConformance) -> str | None:
        return _username(ncr.verified_by)

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_cancelled_by(self, ncr: NonConformance) -> str | None:
        return _username(ncr.cancelled_by)

    @extend_schema_field(SignatureSerializer(allow_null=True))
    def get_signature(self, ncr: NonConformance) -> dict | None:
        return SignatureSerializer(ncr).data if ncr.signed_by_id else None


# ---------------------------------------------------------------- bodies in


def _text(max_length: int | None = None, **kwargs: Any) -> serializers.CharField:
    return serializers.CharField(min_length=1, max_length=max_length or 10000, **kwargs)


class NcrCreateSerializer(serializers.Serializer):
    title = _text(200)
    description = _text()
    line = serializers.SlugField(min_length=1, max_length=30, help_text="Line code")
    step = serializers.ChoiceField(
        choices=StationKind.choices, required=False, default="", allow_blank=True
    )
    holds = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**31 - 1),
        required=False,
        default=list,
        max_length=MAX_HOLDS,
        help_text="Ids of the holds it covers",
    )
    opened_from = serializers.IntegerField(
        min_value=1,
        max_value=2**31 - 1,
        required=False,
        allow_null=True,
        default=None,
        help_text="The hold it is opened from (covered too)",
    )


class NcrEditSerializer(serializers.Serializer):
    """What may be corrected; only the fields sent change."""

    title = _text(200, required=False)
    description = _text(required=False)
    line = serializers.SlugField(min_length=1, max_length=30, required=False)
    step = serializers.ChoiceField(choices=StationKind.choices, required=False, allow_blank=True)


class ContainmentSerializer(serializers.Serializer):
    containment = _text(help_text="What stops it spreading, beside the holds covered")


class HoldRefSerializer(serializers.Serializer):
    hold = serializers.IntegerField(min_value=1, max_value=2**31 - 1)


class RootCauseSerializer(serializers.Serializer):
    category = serializers.ChoiceField(choices=NonConformance.RootCause.choices)
    five_whys = _text()


class ActionCreateSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=NonConformanceAction.Kind.choices)
    description = _text()
    owner = serializers.CharField(min_length=1, max_length=150, help_text="The owner's username")
    due_date = serializers.DateField()


class ActionDoneSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=10000, required=False, default="", allow_blank=True)


class VerificationSerializer(serializers.Serializer):
    verification = _text(help_text="How the actions were seen to work")


class ReasonSerializer(serializers.Serializer):
    reason = _text(1000)


class CloseSerializer(serializers.Serializer):
    password = serializers.CharField(
        min_length=1,
        max_length=4096,
        trim_whitespace=False,
        write_only=True,
        help_text="The signer's own password, re-entered: the electronic signature",
    )
    meaning = serializers.CharField(
        max_length=200,
        required=False,
        default=services.DEFAULT_SIGNATURE_MEANING,
        help_text="What the signature means",
    )


# ---------------------------------------------------------------- views


class NcrFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(
        choices=[(selectors.ACTIVE, "Not closed or cancelled"), *NonConformance.Status.choices],
        method="by_status",
    )
    line = django_filters.CharFilter(field_name="line__code", help_text="Line code")

    class Meta:
        model = NonConformance
        fields = ["status", "line"]

    def by_status(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        if value == selectors.ACTIVE:
            return queryset.filter(status__in=NonConformance.ACTIVE)
        return queryset.filter(status=value)


def _detail(code: str) -> NonConformance:
    try:
        return selectors.nonconformance_detail(code)
    except NonConformance.DoesNotExist:
        raise NotFound(
            "not_found", _("No non-conformance report %(code)s.") % {"code": code}
        ) from None


def _answer(code: str, answer_status: int = status.HTTP_200_OK) -> Response:
    return Response(NcrDetailSerializer(_detail(code)).data, status=answer_status)


def _ncr(code: str) -> NonConformance:
    ncr = NonConformance.objects.filter(code=code).first()
    if ncr is None:
        raise NotFound("not_found", _("No non-conformance report %(code)s.") % {"code": code})
    return ncr


def _invalid(field: str, message: str) -> DomainError:
    return DomainError(
        "invalid", _("The request is not valid."), status=400, errors={field: [message]}
    )


def _holds(ids: list[int], field: str = "holds") -> list[Hold]:
    """Holds named in a body: one that does not exist is bad input (400 on the field)."""
    found = {hold.pk: hold for hold in Hold.objects.filter(pk__in=ids)}
    missing = sorted(set(ids) - set(found))
    if missing:
        raise _invalid(field, f"No hold {', '.join(map(str, missing))}.")
    return [found[pk] for pk in dict.fromkeys(ids)]


def _body(serializer: type, request: Request) -> dict:
    body = serializer(data=request.data)
    body.is_valid(raise_exception=True)
    return body.validated_data


TRANSITION_ERRORS = engineer_errors(400, 401, 403, 404, 409, 415)


class NcrListView(EngineerListView):
    """Non-conformance reports, newest first; `status=active` for those not closed or cancelled."""

    permissions = {"GET": roles.VIEW_NCRS, "POST": roles.OPEN_NCR}
    serializer_class = NcrSerializer
    filterset_class = NcrFilter

    @extend_schema(responses={200: NcrSerializer(many=True), **engineer_errors(400, 401, 403, 404)})
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> QuerySet:
        return selectors.nonconformance_list()

    @extend_schema(
        request=NcrCreateSerializer,
        responses={201: NcrDetailSerializer, **engineer_errors(400, 401, 403, 415)},
        description="Open an NCR (code NCR-<year>-<number>), covering the holds named.",
    )
    def post(self, request: Request) -> Response:
        data = _body(NcrCreateSerializer, request)
        line = Line.objects.filter(code=data["line"]).first()
        if line is None:
            raise _invalid("line", f"No line {data['line']}.")
        holds = _holds(data["holds"])
        opened_from = None
        if data["opened_from"] is not None:
            (opened_from,) = _holds([data["opened_from"]], "opened_from")
        ncr = services.open_nonconformance(
            title=data["title"],
            description=data["description"],
            line=line,
            step=data["step"],
            holds=holds,
            opened_from=opened_from,
            by=request.user,
        )
        return _answer(ncr.code, status.HTTP_201_CREATED)


class NcrDetailView(EngineerAPIView):
    permissions = {"GET": roles.VIEW_NCRS, "PATCH": roles.EDIT_NCR}

    @extend_schema(responses={200: NcrDetailSerializer, **engineer_errors(401, 403, 404)})
    def get(self, request: Request, code: str) -> Response:
        return _answer(code)

    @extend_schema(
        request=NcrEditSerializer,
        responses={200: NcrDetailSerializer, **TRANSITION_ERRORS},
        description="Correct the title, description, line or step until it is closed or "
        "cancelled; the audit event keeps the old and new values.",
    )
    def patch(self, request: Request, code: str) -> Response:
        ncr = _ncr(code)
        changes = dict(_body(NcrEditSerializer, request))
        if "line" in changes:
            line = Line.objects.filter(code=changes["line"]).first()
            if line is None:
                raise _invalid("line", f"No line {changes['line']}.")
            changes["line"] = line
        services.edit_nonconformance(ncr, by=request.user, **changes)
        return _answer(code)


def _transition(
    name: str,
    body: type,
    permission: str,
    description: str,
    act: Callable[[NonConformance, dict, Request], Any],
    errors: dict[int, OpenApiResponse] | None = None,
) -> type[EngineerAPIView]:
    """A POST endpoint of one transition: validate `body`, call `act(ncr, data, request)`, answer
    the NCR as it is now."""

    class TransitionView(EngineerAPIView):
        permissions = {"POST": permission}

        @extend_schema(
            request=body,
            responses={200: NcrDetailSerializer, **TRANSITION_ERRORS, **(errors or {})},
            description=description,
        )
        def post(self, request: Request, code: str) -> Response:
            ncr = _ncr(code)
            act(ncr, _body(body, request), request)
            return _answer(code)

    TransitionView.__name__ = TransitionView.__qualname__ = name
    return TransitionView


NcrContainmentView = _transition(
    "NcrContainmentView",
    ContainmentSerializer,
    roles.EDIT_NCR,
    "Write down the containment: open -> contained.",
    lambda ncr, data, request: services.record_containment(
        ncr, containment=data["containment"], by=request.user
    ),
)
NcrHoldAddView = _transition(
    "NcrHoldAddView",
    HoldRefSerializer,
    roles.EDIT_NCR,
    "Let the NCR cover one more hold (until it is closed or cancelled).",
    lambda ncr, data, request: services.add_hold(
        ncr, _holds([data["hold"]], "hold")[0], by=request.user
    ),
)
NcrRootCauseView = _transition(
    "NcrRootCauseView",
    RootCauseSerializer,
    roles.EDIT_NCR,
    "The root cause (one of the six M's) and the five whys: contained -> analysed (again while "
    "analysed, to revise it).",
    lambda ncr, data, request: services.record_root_cause(
        ncr, category=data["category"], five_whys=data["five_whys"], by=request.user
    ),
)
NcrVerifyView = _transition(
    "NcrVerifyView",
    VerificationSerializer,
    roles.EDIT_NCR,
    "How the actions were seen to work: actions -> verification. Refused (409 `actions_open`) "
    "while a corrective action is open.",
    lambda ncr, data, request: services.record_verification(
        ncr, verification=data["verification"], by=request.user
    ),
)
NcrReopenView = _transition(
    "NcrReopenView",
    ReasonSerializer,
    roles.EDIT_NCR,
    "The verification found the actions did not work: verification -> actions, with the reason.",
    lambda ncr, data, request: services.reopen_actions(ncr, reason=data["reason"], by=request.user),
)
NcrCancelView = _transition(
    "NcrCancelView",
    ReasonSerializer,
    roles.CLOSE_NCR,
    "Cancel an NCR that is not closed, with the reason (quality engineers).",
    lambda ncr, data, request: services.cancel_nonconformance(
        ncr, reason=data["reason"], by=request.user
    ),
)
NcrCloseView = _transition(
    "NcrCloseView",
    CloseSerializer,
    roles.CLOSE_NCR,
    "Close a verified NCR with an electronic signature: the signer's password re-entered and "
    "the signature's meaning, kept with who and when on the NCR and in the audit trail. "
    "Quality engineers only; every action must be done (409 `actions_open`). A wrong password "
    "is refused (403 `signature_invalid`), writes nothing and counts toward the sign-in lockout "
    "of the address (then 429 `throttled`).",
    lambda ncr, data, request: services.close_nonconformance(
        ncr,
        password=data["password"],
        meaning=data["meaning"],
        by=request.user,
        request=request._request,
    ),
    {
        403: OpenApiResponse(
            ApiErrorSerializer,
            description="permission_denied: not a quality role; signature_invalid: wrong password",
        )
    },
)


class NcrHoldRemoveView(EngineerAPIView):
    permissions = {"DELETE": roles.EDIT_NCR}

    @extend_schema(
        responses={200: NcrDetailSerializer, **engineer_errors(401, 403, 404, 409)},
        description="Take a hold out of the NCR's containment (until it is closed or cancelled).",
    )
    def delete(self, request: Request, code: str, hold: int) -> Response:
        ncr = _ncr(code)
        found = Hold.objects.filter(pk=hold).first()
        if found is None:
            raise NotFound("not_found", _("No hold %(hold)s.") % {"hold": hold})
        services.remove_hold(ncr, found, by=request.user)
        return _answer(code)


class NcrActionListView(EngineerAPIView):
    permissions = {"POST": roles.EDIT_NCR}

    @extend_schema(
        request=ActionCreateSerializer,
        responses={201: NcrDetailSerializer, **TRANSITION_ERRORS},
        description="Plan a corrective or preventive action with its owner and due date; the "
        "first one starts the actions (analysed -> actions).",
    )
    def post(self, request: Request, code: str) -> Response:
        ncr = _ncr(code)
        data = _body(ActionCreateSerializer, request)
        owner = get_user_model().objects.filter(username=data["owner"], is_active=True).first()
        if owner is None:
            raise _invalid("owner", f"No active user {data['owner']}.")
        services.add_action(
            ncr,
            kind=data["kind"],
            description=data["description"],
            owner=owner,
            due_date=data["due_date"],
            by=request.user,
        )
        return _answer(code, status.HTTP_201_CREATED)


class NcrActionDoneView(EngineerAPIView):
    permissions = {"POST": roles.EDIT_NCR}

    @extend_schema(
        request=ActionDoneSerializer,
        responses={200: NcrDetailSerializer, **TRANSITION_ERRORS},
        description="Mark an action done, with a note (who and when are recorded).",
    )
    def post(self, request: Request, code: str, action: int) -> Response:
        ncr = _ncr(code)
        found = ncr.actions.filter(pk=action).first()
        if found is None:
            raise NotFound(
                "not_found",
                _("%(code)s has no action %(action)s.") % {"code": code, "action": action},
            )
        data = _body(ActionDoneSerializer, request)
        services.complete_action(found, by=request.user, note=data["note"])
        return _answer(code)
