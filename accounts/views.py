"""The signed-in user's own page of personal API tokens: list, issue (the key shown once), revoke."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from knox.models import AuthToken

from accounts.services import issue_personal_token, revoke_personal_token, token_label


@login_required
def personal_tokens(request: HttpRequest) -> HttpResponse:
    """GET lists the user's tokens; POST issues one and shows its key on this answer only (no
    redirect: the key would have to be kept somewhere, a session or a cookie, to show it after)."""
    new_key = None
    if request.method == "POST":
        _, new_key = issue_personal_token(request.user, by=request.user)
    now = timezone.now()
    tokens = [
        {
            "id": token.digest,
            "label": token_label(token),
            "created": token.created,
            "expiry": token.expiry,
            "expired": token.expiry is not None and token.expiry <= now,
        }
        for token in AuthToken.objects.filter(user=request.user).order_by("-created")
    ]
    return render(
        request,
        "accounts/tokens.html",
        {"tokens": tokens, "new_key": new_key, "token_days": settings.PERSONAL_TOKEN_DAYS},
    )


@login_required
@require_POST
def revoke_token(request: HttpRequest) -> HttpResponse:
    # Only the user's own tokens: another's digest is "no such token", as is a made-up one.
    token = AuthToken.objects.filter(
        user=request.user, digest=request.POST.get("token", "")
    ).first()
    if token is None:
        raise Http404("No such token.")
    revoke_personal_token(token, by=request.user)
    messages.success(
        request, _("Token %(token)s… revoked: it no longer works.") % {"token": token_label(token)}
    )
    return redirect("personal-tokens")
