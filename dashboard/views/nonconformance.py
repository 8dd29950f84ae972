"""Pages of non-conformance reports: the list, opening one (from a hold or by hand), and the
detail page with a form for each step of its lifecycle. Every form posts to a view that calls
one quality.nonconformance service and comes back (post/redirect/get)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _g
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from batches.models import Hold
from batches.selectors import holds_with_details
from core import roles
from core.errors import DomainError
from dashboard.forms import first_error
from dashboard.views.common import act, page_of, query_without_page
from lines.models import Line, StationKind
from quality import nonconformance as services
from quality import nonconformance_selectors as selectors
from quality.models import NonConformance, NonConformanceAction

# ---------------------------------------------------------------- forms


class OpenForm(forms.Form):
    title = forms.CharField(max_length=200, label=_("title"))
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), label=_("description"))
    line = forms.ModelChoiceField(
        queryset=Line.objects.all(), to_field_name="code", label=_("line")
    )
    step = forms.ChoiceField(
        choices=[("", "–"), *StationKind.choices], required=False, label=_("step")
    )
    hold = forms.ModelChoiceField(
        queryset=Hold.objects.all(), required=False, widget=forms.HiddenInput
    )


class EditForm(forms.Form):
    title = forms.CharField(max_length=200, label=_("title"))
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), label=_("description"))
    line = forms.ModelChoiceField(
        queryset=Line.objects.all(), to_field_name="code", label=_("line")
    )
    step = forms.ChoiceField(
        choices=[("", "–"), *StationKind.choices], required=False, label=_("step")
    )


class ContainmentForm(forms.Form):
    containment = forms.CharField(max_length=10000, label=_("containment"))


class HoldForm(forms.Form):
    hold = forms.ModelChoiceField(queryset=Hold.objects.all(), label=_("hold"))


class RootCauseForm(forms.Form):
    category = forms.ChoiceField(
        choices=NonConformance.RootCause.choices, label=_("root cause category")
    )
    five_whys = forms.CharField(max_length=10000, label=_("five whys"))


class ActionForm(forms.Form):
    kind = forms.ChoiceField(choices=NonConformanceAction.Kind.choices, label=_("kind"))
    description = forms.CharField(max_length=10000, label=_("action"))
    owner = forms.ModelChoiceField(
        queryset=get_user_model().objects.filter(is_active=True),
        to_field_name="username",
        label=_("owner"),
    )
    due_date = forms.DateField(label=_("due date"))


class NoteForm(forms.Form):
    note = forms.CharField(max_length=10000, required=False, label=_("note"))


class VerificationForm(forms.Form):
    verification = forms.CharField(max_length=10000, label=_("verification"))


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=1000, label=_("reason"))


class SignatureForm(forms.Form):
    password = forms.CharField(
        max_length=4096, strip=False, widget=forms.PasswordInput, label=_("password")
    )
    meaning = forms.CharField(max_length=200, label=_("meaning of the signature"))


# ---------------------------------------------------------------- pages


@roles.page_permission(roles.VIEW_NCRS)
def ncr_list(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status", selectors.ACTIVE)
    if status not in (selectors.ACTIVE, *NonConformance.Status.values):
        status = ""
    line = request.GET.get("line", "")
    return render(
        request,
        "quality/ncr_list.html",
        {
            "page": page_of(request, selectors.nonconformance_list(status=status, line=line)),
            "query": query_without_page(request),
            "lines": Line.objects.all(),
            "statuses": NonConformance.Status.choices,
            "status_filter": status,
            "line_filter": line,
        },
    )


@roles.page_permission(roles.OPEN_NCR)
def ncr_new(request: HttpRequest) -> HttpResponse:
    """Open an NCR by hand, or from a hold (`?hold=<id>`): its fields filled in from the hold."""
    if request.method == "POST":
        form = OpenForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                ncr = services.open_nonconformance(
                    title=data["title"],
                    description=data["description"],
                    line=data["line"],
                    step=data["step"],
                    opened_from=data["hold"],
                    by=request.user,
                )
            except DomainError as error:
                messages.error(request, error.detail)
            else:
                messages.success(request, _g("%(ncr)s opened.") % {"ncr": ncr.code})
                return redirect("ncr", code=ncr.code)
        else:
            messages.error(request, first_error(form))
        hold = form.cleaned_data.get("hold")
    else:
        hold = None
        initial = {}
        if request.GET.get("hold", "").isdigit():
            hold = get_object_or_404(
                Hold.objects.select_related("batch__line", "station__line", "run__step"),
                pk=int(request.GET["hold"]),
            )
            draft = services.draft_from_hold(hold)
            initial = {
                "title": draft.title,
                "description": draft.description,
                "line": draft.line.code if draft.line else None,
                "step": draft.step,
                "hold": hold.pk,
            }
        form = OpenForm(initial=initial)
    return render(request, "quality/ncr_new.html", {"form": form, "hold": hold})


@roles.page_permission(roles.VIEW_NCRS)
def ncr_detail(request: HttpRequest, code: str) -> HttpResponse:
    try:
        ncr = selectors.nonconformance_detail(code)
    except NonConformance.DoesNotExist:
        raise Http404(f"No NCR {code}") from None
    covered = {hold.pk for hold in ncr.holds.all()}
    return render(
        request,
        "quality/ncr_detail.html",
        {
            "ncr": ncr,
            "actions": list(ncr.actions.all()),
            "trail": selectors.nonconformance_trail(ncr),
            # Open holds it could cover next, for the containment's "add" form.
            "open_holds": [
                hold
                for hold in holds_with_details(
                    Hold.objects.filter(status=Hold.Status.OPEN)
                ).order_by("-opened_at", "-id")[:50]
                if hold.pk not in covered
            ],
            "root_causes": NonConformance.RootCause.choices,
            "action_kinds": NonConformanceAction.Kind.choices,
            "owners": get_user_model()
            .objects.filter(is_active=True)
            .order_by("username")
            .only("username", "first_name", "last_name"),
            "today": timezone.localdate(),
            "default_meaning": services.DEFAULT_SIGNATURE_MEANING,
            "S": NonConformance.Status,
            "edit_form": EditForm(
                initial={
                    "title": ncr.title,
                    "description": ncr.description,
                    "line": ncr.line.code,
                    "step": ncr.step,
                }
            ),
        },
    )


# ---------------------------------------------------------------- actions


def _ncr_or_404(code: str) -> NonConformance:
    return get_object_or_404(NonConformance, code=code)


def _back(ncr: NonConformance, section: str = "") -> str:
    return reverse("ncr", args=[ncr.code]) + (f"#{section}" if section else "")


@roles.page_permission(roles.EDIT_NCR)
@require_POST
def ncr_edit(request: HttpRequest, code: str) -> HttpResponse:
    ncr = _ncr_or_404(code)
    return act(
        request,
        EditForm(request.POST),
        lambda data: services.edit_nonconformance(ncr, by=request.user, **data),
        _g("%(ncr)s corrected.") % {"ncr": ncr.code},
        _back(ncr),
    )


@roles.page_permission(roles.EDIT_NCR)
@require_POST
def ncr_containment(request: HttpRequest, code: str) -> HttpResponse:
    ncr = _ncr_or_404(code)
    return act(
        request,
        ContainmentForm(request.POST),
        lambda data: services.record_containment(
            ncr, containment=data["containment"], by=request.user
        ),
        _g("%(ncr)s is contained.") % {"ncr": ncr.code},
        _back(ncr, "containment"),
    )


@roles.page_permission(roles.EDIT_NCR)
@require_POST
def ncr_hold_add(request: HttpRequest, code: str) -> HttpResponse:
    ncr = _ncr_or_404(code)
    form = HoldForm(request.POST)
    return act(
        request,
        form,
        lambda data: services.add_hold(ncr, data["hold"], by=request.user),
        lambda _: (
            _g("%(ncr)s covers hold %(hold)s.")
            % {"ncr": ncr.code, "hold": form.cleaned_data["hold"].pk}
        ),
        _back(ncr, "containment"),
    )


@roles.page_permission(roles.EDIT_NCR)
@require_POST
def ncr_hold_remove(request: HttpRequest, code: str, hold: int) -> HttpResponse:
    ncr = _ncr_or_404(code)
    removed = get_object_or_404(Hold, pk=hold)
    return act(
        request,
        NoteForm(request.POST),
        lambda data: services.remove_hold(ncr, removed, by=request.user, reason=data["note"]),
        _g("Hold %(hold)s is no longer covered by %(ncr)s.")
        % {"hold": removed.pk, "ncr": ncr.code},
        _back(ncr, "containment"),
    )


@roles.page_permission(roles.EDIT_NCR)
@require_POST
def ncr_root_cause(request: HttpRequest, code: str) -> HttpResponse:
    ncr = _ncr_or_404(code)
    return act(
        request,
        RootCauseForm(request.POST),
        lambda data: services.record_root_cause(
            ncr, category=data["category"], five_whys=data["five_whys"], by=request.user
        ),
        _g("Root cause of %(ncr)s recorded.") % {"ncr": ncr.code},
        _back(ncr, "root-cause"),
    )


@roles.page_permission(roles.EDIT_NCR)
@require_POST
def ncr_action_add(request: HttpRequest, code: str) -> HttpResponse:
    ncr = _ncr_or_404(code)
    return act(
        request,
        ActionForm(request.POST),
        lambda data: services.add_action(ncr, **data, by=request.user),
        lambda action: (
            _g("%(kind)s action added to %(ncr)s.")
            % {"kind": action.get_kind_display(), "ncr": ncr.code}
        ),
        _back(ncr, "actions"),
    )


@roles.page_permission(roles.EDIT_NCR)
@require_POST
def ncr_action_done(request: HttpRequest, code: str, action: int) -> HttpResponse:
    ncr = _ncr_or_404(code)
    found = get_object_or_404(NonConformanceAction, pk=action, nonconformance=ncr)
    return act(
        request,
        NoteForm(request.POST),
        lambda data: services.complete_action(found, by=request.user, note=data["note"]),
        _g("Action %(action)s of %(ncr)s is done.") % {"action": found.pk, "ncr": ncr.code},
        _back(ncr, "actions"),
    )


@roles.page_permission(roles.EDIT_NCR)
@require_POST
def ncr_verify(request: HttpRequest, code: str) -> HttpResponse:
    ncr = _ncr_or_404(code)
    return act(
        request,
        VerificationForm(request.POST),
        lambda data: services.record_verification(
            ncr, verification=data["verification"], by=request.user
        ),
        _g("%(ncr)s is verified; it waits for quality's signature.") % {"ncr": ncr.code},
        _back(ncr, "verification"),
    )


@roles.page_permission(roles.EDIT_NCR)
@require_POST
def ncr_reopen(request: HttpRequest, code: str) -> HttpResponse:
    ncr = _ncr_or_404(code)
    return act(
        request,
        ReasonForm(request.POST),
        lambda data: services.reopen_actions(ncr, reason=data["reason"], by=request.user),
        _g("%(ncr)s is back to actions.") % {"ncr": ncr.code},
        _back(ncr, "actions"),
    )


@roles.page_permission(roles.CLOSE_NCR)
@require_POST
def ncr_close(request: HttpRequest, code: str) -> HttpResponse:
    ncr = _ncr_or_404(code)
    return act(
        request,
        SignatureForm(request.POST),
        lambda data: services.close_nonconformance(
            ncr,
            password=data["password"],
            meaning=data["meaning"],
            by=request.user,
            request=request,
        ),
        _g("%(ncr)s is closed and signed.") % {"ncr": ncr.code},
        _back(ncr, "closure"),
    )


@roles.page_permission(roles.CLOSE_NCR)
@require_POST
def ncr_cancel(request: HttpRequest, code: str) -> HttpResponse:
    ncr = _ncr_or_404(code)
    return act(
        request,
        ReasonForm(request.POST),
        lambda data: services.cancel_nonconformance(ncr, reason=data["reason"], by=request.user),
        _g("%(ncr)s is cancelled.") % {"ncr": ncr.code},
        _back(ncr),
    )


# Included by dashboard/urls.py.
urlpatterns = [
    path("ncrs/", ncr_list, name="ncrs"),
    path("ncrs/new", ncr_new, name="ncr-new"),
    path("ncrs/<slug:code>/", ncr_detail, name="ncr"),
    path("ncrs/<slug:code>/edit", ncr_edit, name="ncr-edit"),
    path("ncrs/<slug:code>/containment", ncr_containment, name="ncr-containment"),
    path("ncrs/<slug:code>/holds", ncr_hold_add, name="ncr-hold-add"),
    path("ncrs/<slug:code>/holds/<int:hold>/remove", ncr_hold_remove, name="ncr-hold-remove"),
    path("ncrs/<slug:code>/root-cause", ncr_root_cause, name="ncr-root-cause"),
    path("ncrs/<slug:code>/actions", ncr_action_add, name="ncr-action-add"),
    path("ncrs/<slug:code>/actions/<int:action>/done", ncr_action_done, name="ncr-action-done"),
    path("ncrs/<slug:code>/verify", ncr_verify, name="ncr-verify"),
    path("ncrs/<slug:code>/reopen", ncr_reopen, name="ncr-reopen"),
    path("ncrs/<slug:code>/close", ncr_close, name="ncr-close"),
    path("ncrs/<slug:code>/cancel", ncr_cancel, name="ncr-cancel"),
]
