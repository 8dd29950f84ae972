"""Experiment lots' pages: the list, and one page per experiment with its arms, the arms
compared on a chosen feature (box plots, main-effect and interaction plots), its transitions
(start, quality's deviation, conclusion, cancel) and the per-cell outcomes as CSV. Each change is
one quality.experiments service and comes back (post/redirect/get)."""

from __future__ import annotations

import csv

from django import forms
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from core import roles
from dashboard.views.common import act, page_of
from quality.experiments import selectors, services
from quality.experiments.models import Experiment


class NoteForm(forms.Form):
    note = forms.CharField(max_length=10000)


class ConclusionForm(forms.Form):
    conclusion = forms.CharField(max_length=20000)


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=10000)


class EmptyForm(forms.Form):
    pass


def _experiment_or_404(code: str) -> Experiment:
    experiment = selectors.experiment_detail(code)
    if experiment is None:
        raise Http404(f"No experiment {code}.")
    return experiment


def _back(experiment: Experiment) -> str:
    return reverse("experiment", args=[experiment.code])


@roles.page_permission(roles.VIEW_EXPERIMENTS)
def experiment_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "experiments/experiment_list.html",
        {"page": page_of(request, selectors.experiments()), "query": ""},
    )


def _chart(results: selectors.Results) -> dict:
    """What the charts draw: per arm the five numbers, mean and CI (box plot and interval), the
    main effects per factor, the interaction lines."""
    return {
        "arms": [
            {
                "arm": a.arm,
                "box": [a.min, a.q1, a.median, a.q3, a.max],
                "mean": a.mean,
                "ci": [a.ci_low, a.ci_high],
                "values": a.values,
            }
            for a in results.arms
            if a.n
        ],
        "main_effects": {
            name: {"levels": [str(m.level) for m in means], "means": [m.mean for m in means]}
            for name, means in results.main_effects.items()
        },
        "interaction": results.interaction,
    }


@roles.page_permission(roles.VIEW_EXPERIMENTS)
def experiment_detail(request: HttpRequest, code: str) -> HttpResponse:
    experiment = _experiment_or_404(code)
    features = selectors.features(experiment)
    feature = request.GET.get("feature") or (features[0] if features else "")
    results = cells = None
    if feature in features:
        results, cells = selectors.experiment_results(experiment, feature)
    return render(
        request,
        "experiments/experiment_detail.html",
        {
            "experiment": experiment,
            "features": features,
            "feature": feature,
            "results": results,
            "chart": _chart(results) if results else None,
            "outside_limits": services.outside_limits(experiment)
            if experiment.status == Experiment.Status.DRAFT
            else [],
            "measured": sum(1 for c in cells or [] if c.value is not None),
            "off_arm": [c.serial for c in cells or [] if not c.on_arm],
        },
    )


@roles.page_permission(roles.VIEW_EXPERIMENTS)
def experiment_csv(request: HttpRequest, code: str) -> HttpResponse:
    """Each assigned cell with its arm, the arm's levels and its value of the feature."""
    experiment = _experiment_or_404(code)
    feature = request.GET.get("feature", "")
    if not feature:
        return HttpResponse(
            "Choose a feature (?feature=NAME).", status=400, content_type="text/plain"
        )
    levels = {arm.code: arm.levels for arm in experiment.arms.all()}
    factors = [f.name for f in experiment.factors.all()]
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{experiment.code}-{feature}.csv"'
    writer = csv.writer(response)
    writer.writerow(["cell", "batch", "position", "arm", *factors, feature, "on_arm_setpoints"])
    for cell in selectors.outcomes(experiment, feature):
        writer.writerow(
            [
                cell.serial,
                cell.batch,
                cell.position,
                cell.arm,
                *(levels[cell.arm][name] for name in factors),
                "" if cell.value is None else repr(cell.value),
                "yes" if cell.on_arm else "no",
            ]
        )
    return response


@roles.page_permission(roles.RUN_EXPERIMENTS)
@require_POST
def experiment_start(request: HttpRequest, code: str) -> HttpResponse:
    experiment = _experiment_or_404(code)
    return act(
        request,
        EmptyForm(request.POST),
        lambda data: services.start_experiment(experiment, by=request.user),
        _("%(experiment)s is running: its cells are served their arms' setpoints.")
        % {"experiment": experiment.code},
        _back(experiment),
    )


@roles.page_permission(roles.APPROVE_EXPERIMENT_DEVIATION)
@require_POST
def experiment_deviation(request: HttpRequest, code: str) -> HttpResponse:
    experiment = _experiment_or_404(code)
    return act(
        request,
        NoteForm(request.POST),
        lambda data: services.approve_deviation(experiment, note=data["note"], by=request.user),
        _("Deviation approved."),
        _back(experiment),
    )


@roles.page_permission(roles.RUN_EXPERIMENTS)
@require_POST
def experiment_conclude(request: HttpRequest, code: str) -> HttpResponse:
    experiment = _experiment_or_404(code)
    return act(
        request,
        ConclusionForm(request.POST),
        lambda data: services.conclude_experiment(
            experiment, conclusion=data["conclusion"], by=request.user
        ),
        _("%(experiment)s is concluded.") % {"experiment": experiment.code},
        _back(experiment),
    )


@roles.page_permission(roles.RUN_EXPERIMENTS)
@require_POST
def experiment_cancel(request: HttpRequest, code: str) -> HttpResponse:
    experiment = _experiment_or_404(code)
    return act(
        request,
        ReasonForm(request.POST),
        lambda data: services.cancel_experiment(experiment, reason=data["reason"], by=request.user),
        _("%(experiment)s is cancelled.") % {"experiment": experiment.code},
        _back(experiment),
    )


# Included by dashboard/urls.py.
urlpatterns = [
    path("quality/experiments/", experiment_list, name="experiments"),
    path("quality/experiments/<slug:code>/", experiment_detail, name="experiment"),
    path("quality/experiments/<slug:code>/cells.csv", experiment_csv, name="experiment-csv"),
    path("quality/experiments/<slug:code>/start", experiment_start, name="experiment-start"),
    path(
        "quality/experiments/<slug:code>/deviation",
        experiment_deviation,
        name="experiment-deviation",
    ),
    path(
        "quality/experiments/<slug:code>/conclude",
        experiment_conclude,
        name="experiment-conclude",
    ),
    path("quality/experiments/<slug:code>/cancel", experiment_cancel, name="experiment-cancel"),
]
