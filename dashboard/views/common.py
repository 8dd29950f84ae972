"""What the pages share: pagination that keeps the filters, and actions as post/redirect/get."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.core.paginator import Page, Paginator
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import redirect
from django.utils.http import url_has_allowed_host_and_scheme

from core.errors import DomainError
from dashboard.forms import first_error

LIST_PAGE = 50


def page_of(
    request: HttpRequest, items: Any, per_page: int = LIST_PAGE, *, count: int | None = None
) -> Page:
    """The requested page of `items`; `count`, how many there are where the caller knows
    already, spares counting them (a lot's 100,000 consumers)."""
    paginator = Paginator(items, per_page)
    if count is not None:
        paginator.count = count  # a cached_property: set, it is not computed
    return paginator.get_page(request.GET.get("page"))


def query_without_page(request: HttpRequest) -> str:
    """The current filters, for pagination links that keep them."""
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()


def back_to(request: HttpRequest, default: str) -> str:
    """Where a form posted from a page returns: its `next` if it is one of ours."""
    back = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        return back
    return default


def act(
    request: HttpRequest,
    form: Any,
    action: Callable[[dict], Any],
    done: str | Callable[[Any], str],
    back: str,
) -> HttpResponseRedirect:
    """Validate the form, call the service, flash what happened (`done`, or `done` of what the
    service returned) and go back (post/redirect/get)."""
    if not form.is_valid():
        messages.error(request, first_error(form))
    else:
        try:
            result = action(form.cleaned_data)
        except DomainError as error:
            fields = " ".join(f"{name}: {problem}" for name, problem in error.errors.items())
            messages.error(request, f"{error.detail} {fields}".strip())
        else:
            messages.success(request, done(result) if callable(done) else done)
    return redirect(back)
