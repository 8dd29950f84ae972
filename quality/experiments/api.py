"""The engineers' API of experiment lots: define, list, read, compare the arms on a feature, and
one endpoint per transition. Serializers only validate; changes are quality.experiments.services,
whose refusals (DomainError) the API answers in the JSON error format."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from batches.models import Batch
from core import roles
from core.api import EngineerAPIView, EngineerListView, engineer_errors
from core.errors import DomainError, NotFound
from lines.models import StationKind
from quality.experiments import selectors, services
from quality.experiments.models import Experiment, Factor

MAX_BATCHES = 20
MAX_MANUAL_CELLS = 5000

# ---------------------------------------------------------------- bodies in


class FactorInSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Factor.Kind.choices, default=Factor.Kind.PARAMETER)
    name = serializers.SlugField(
        min_length=1, max_length=60, help_text="Recipe parameter, or material role"
    )
    station_kind = serializers.ChoiceField(choices=StationKind.choices)
    levels = serializers.ListField(
        child=serializers.JSONField(),
        min_length=2,
        max_length=services.MAX_LEVELS,
        help_text="Numbers for a parameter; lot codes for a material",
    )


class ArmInSerializer(serializers.Serializer):
    code = serializers.SlugField(min_length=1, max_length=30)
    levels = serializers.DictField(child=serializers.JSONField(), help_text="factor -> level")


class ExperimentCreateSerializer(serializers.Serializer):
    code = serializers.SlugField(min_length=1, max_length=30)
    title = serializers.CharField(min_length=1, max_length=200)
    objective = serializers.CharField(
        max_length=10000, required=False, default="", allow_blank=True
    )
    batches = serializers.ListField(
        child=serializers.SlugField(min_length=1, max_length=40),
        min_length=1,
        max_length=MAX_BATCHES,
    )
    factors = FactorInSerializer(many=True, min_length=1, max_length=5)
    design = serializers.ChoiceField(choices=Experiment.Design.choices)
    arms = ArmInSerializer(
        many=True, required=False, max_length=services.MAX_ARMS, help_text="design=arms only"
    )
    assignment = serializers.ChoiceField(choices=Experiment.Assignment.choices)
    seed = serializers.IntegerField(
        required=False, min_value=0, max_value=2**62, help_text="random: the shuffle's seed"
    )
    cells = serializers.DictField(
        child=serializers.SlugField(min_length=1, max_length=30),
        required=False,
        help_text="manual: cell serial -> arm code",
    )

    def validate(self, data: dict) -> dict:
        if data["design"] == Experiment.Design.ARMS and not data.get("arms"):
            raise serializers.ValidationError({"arms": ["List the arms of design=arms."]})
        if data["assignment"] == Experiment.Assignment.MANUAL and not data.get("cells"):
            raise serializers.ValidationError({"cells": ["Assign the cells by hand."]})
        if len(data.get("cells") or {}) > MAX_MANUAL_CELLS:
            raise serializers.ValidationError({"cells": [f"At most {MAX_MANUAL_CELLS} cells."]})
        return data


class DeviationNoteSerializer(serializers.Serializer):
    note = serializers.CharField(min_length=1, max_length=10000)


class ConclusionSerializer(serializers.Serializer):
    conclusion = serializers.CharField(min_length=1, max_length=20000)


class CancelReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(min_length=1, max_length=10000)


# ---------------------------------------------------------------- bodies out


class ExperimentRowSerializer(serializers.Serializer):
    code = serializers.CharField()
    title = serializers.CharField()
    status = serializers.ChoiceField(choices=Experiment.Status.choices)
    design = serializers.ChoiceField(choices=Experiment.Design.choices)
    assignment = serializers.ChoiceField(choices=Experiment.Assignment.choices)
    arms = serializers.IntegerField(source="arm_count")
    cells = serializers.IntegerField(source="cell_count")
    created_by = serializers.CharField(source="created_by.username")
    created_at = serializers.DateTimeField()


class ArmOutSerializer(serializers.Serializer):
    code = serializers.CharField()
    levels = serializers.DictField(child=serializers.JSONField())
    cells = serializers.IntegerField(source="cell_count")
    recipe_versions = serializers.SerializerMethodField(
        help_text="The frozen versions the arm is served (once running)"
    )

    def get_recipe_versions(self, arm: Any) -> list[dict]:
        return [
            {
                "recipe": row.version.recipe.name,
                "station_kind": row.version.recipe.station_kind,
                "version": row.version.version,
            }
            for row in arm.recipe_versions.all()
        ]


class FactorOutSerializer(serializers.Serializer):
    kind = serializers.CharField()
    name = serializers.CharField()
    station_kind = serializers.CharField()
    levels = serializers.ListField(child=serializers.JSONField())


class ExperimentSerializer(serializers.Serializer):
    code = serializers.CharField()
    title = serializers.CharField()
    objective = serializers.CharField()
    status = serializers.ChoiceField(choices=Experiment.Status.choices)
    design = serializers.CharField()
    assignment = serializers.CharField()
    seed = serializers.IntegerField(allow_null=True)
    batches = serializers.SerializerMethodField()
    factors = FactorOutSerializer(many=True, source="factors.all")
    arms = ArmOutSerializer(many=True, source="arms.all")
    created_by = serializers.CharField(source="created_by.username")
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    ended_at = serializers.DateTimeField(allow_null=True)
    deviation_approved_by = serializers.CharField(
        source="deviation_approved_by.username", allow_null=True, default=None
    )
    deviation_approved_at = serializers.DateTimeField(allow_null=True)
    conclusion = serializers.CharField()

    def get_batches(self, experiment: Experiment) -> list[str]:
        return sorted(b.code for b in experiment.batches.all())


class ResultsQuerySerializer(serializers.Serializer):
    feature = serializers.RegexField(
        r"^(grade:)?[-a-zA-Z0-9_]{1,60}$",
        help_text="A measurement's name, or grade:<G> for the share of grade G",
    )


def _experiment(code: str) -> Experiment:
    experiment = selectors.experiment_detail(code)
    if experiment is None:
        raise NotFound("not_found", _("No experiment %(code)s.") % {"code": code})
    return experiment


def _body(serializer: type, request: Request) -> dict:
    body = serializer(data=request.data)
    body.is_valid(raise_exception=True)
    return body.validated_data


def _answer(code: str, http_status: int = status.HTTP_200_OK) -> Response:
    return Response(ExperimentSerializer(_experiment(code)).data, status=http_status)


class ExperimentListView(EngineerListView):
    """Experiments, newest first."""

    permissions = {"GET": roles.VIEW_EXPERIMENTS, "POST": roles.RUN_EXPERIMENTS}
    serializer_class = ExperimentRowSerializer

    def get_queryset(self) -> QuerySet:
        return selectors.experiments()

    @extend_schema(
        responses={200: ExperimentRowSerializer(many=True), **engineer_errors(401, 403, 404)}
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        request=ExperimentCreateSerializer,
        responses={201: ExperimentSerializer, **engineer_errors(400, 401, 403, 409, 415)},
        description="Define an experiment in draft: factors and levels, a full factorial or a "
        "list of arms, and the cells of each arm (random with a stored seed, balanced round "
        "robin over positions, or by hand). 409 `cells_past_step` when a cell has already been "
        "through a factor's step.",
    )
    def post(self, request: Request) -> Response:
        data = _body(ExperimentCreateSerializer, request)
        codes = list(dict.fromkeys(data["batches"]))
        batches = list(Batch.objects.filter(code__in=codes))
        if missing := sorted(set(codes) - {b.code for b in batches}):
            raise DomainError(
                "invalid",
                _("The request is not valid."),
                status=400,
                errors={"batches": [f"No batch {', '.join(missing)}."]},
            )
        experiment = services.create_experiment(
            code=data["code"],
            title=data["title"],
            objective=data["objective"],
            batches=batches,
            factors=[services.FactorSpec(**f) for f in data["factors"]],
            design=data["design"],
            arms=data.get("arms"),
            assignment=data["assignment"],
            seed=data.get("seed"),
            manual=data.get("cells"),
            by=request.user,
        )
        return _answer(experiment.code, status.HTTP_201_CREATED)


class ExperimentDetailView(EngineerAPIView):
    permissions = {"GET": roles.VIEW_EXPERIMENTS}

    @extend_schema(responses={200: ExperimentSerializer, **engineer_errors(401, 403, 404)})
    def get(self, request: Request, code: str) -> Response:
        return _answer(code)


class ArmResultSerializer(serializers.Serializer):
    arm = serializers.CharField()
    levels = serializers.DictField(child=serializers.JSONField())
    n = serializers.IntegerField()
    mean = serializers.FloatField(allow_null=True)
    sd = serializers.FloatField(allow_null=True)
    ci_low = serializers.FloatField(allow_null=True, help_text="95 % CI of the mean (t)")
    ci_high = serializers.FloatField(allow_null=True)
    min = serializers.FloatField(allow_null=True)
    q1 = serializers.FloatField(allow_null=True)
    median = serializers.FloatField(allow_null=True)
    q3 = serializers.FloatField(allow_null=True)
    max = serializers.FloatField(allow_null=True)


class ComparisonSerializer(serializers.Serializer):
    test = serializers.CharField(help_text="welch_t (two arms), anova (more), empty: too few")
    statistic = serializers.FloatField(allow_null=True)
    df = serializers.FloatField(allow_null=True)
    p_value = serializers.FloatField(allow_null=True)
    cohens_d = serializers.FloatField(allow_null=True)
    hedges_g = serializers.FloatField(allow_null=True)
    eta_squared = serializers.FloatField(allow_null=True)


class ResultsSerializer(serializers.Serializer):
    experiment = serializers.CharField()
    feature = serializers.CharField()
    arms = ArmResultSerializer(many=True)
    comparison = ComparisonSerializer()
    main_effects = serializers.JSONField(help_text="factor -> [{level, n, mean}]")
    interaction = serializers.JSONField(
        allow_null=True, help_text="means of the first two factors' level combinations"
    )


def results_body(experiment: Experiment, feature: str) -> dict:
    found, _ = selectors.experiment_results(experiment, feature)
    return {
        "experiment": experiment.code,
        "feature": feature,
        "arms": [ArmResultSerializer(a).data for a in found.arms],
        "comparison": ComparisonSerializer(found.comparison).data,
        "main_effects": {
            name: [{"level": m.level, "n": m.n, "mean": m.mean} for m in means]
            for name, means in found.main_effects.items()
        },
        "interaction": found.interaction,
    }


class ExperimentResultsView(EngineerAPIView):
    permissions = {"GET": roles.VIEW_EXPERIMENTS}

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "feature",
                OpenApiTypes.STR,
                required=True,
                description="A measurement's name, or grade:<G> (the share of grade G)",
            )
        ],
        responses={200: ResultsSerializer, **engineer_errors(400, 401, 403, 404)},
        description="The arms compared on a measured feature: n, mean, SD, 95 % CI per arm; "
        "Welch's t (two arms, Cohen's d, Hedges' g) or one-way ANOVA (eta squared); main "
        "effects and the two-factor interaction of a factorial design.",
    )
    def get(self, request: Request, code: str) -> Response:
        query = ResultsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return Response(results_body(_experiment(code), query.validated_data["feature"]))


def _transition(name: str, body: type | None, permission: str, description: str, act: Any):
    class TransitionView(EngineerAPIView):
        permissions = {"POST": permission}

        @extend_schema(
            request=body,
            responses={200: ExperimentSerializer, **engineer_errors(400, 401, 403, 404, 409, 415)},
            description=description,
        )
        def post(self, request: Request, code: str) -> Response:
            experiment = _experiment(code)
            act(experiment, _body(body, request) if body else {}, request)
            return _answer(code)

    TransitionView.__name__ = TransitionView.__qualname__ = name
    return TransitionView


ExperimentStartView = _transition(
    "ExperimentStartView",
    None,
    roles.RUN_EXPERIMENTS,
    "Draft -> running: each arm's recipe versions are derived and frozen, and its cells are "
    "served them at track-in. 409 `deviation_required` while a setpoint outside the released "
    "limits has no deviation approved by quality.",
    lambda e, data, request: services.start_experiment(e, by=request.user),
)
ExperimentDeviationView = _transition(
    "ExperimentDeviationView",
    DeviationNoteSerializer,
    roles.APPROVE_EXPERIMENT_DEVIATION,
    "Quality approves the arms' setpoints outside the released limits (draft only).",
    lambda e, data, request: services.approve_deviation(e, note=data["note"], by=request.user),
)
ExperimentConcludeView = _transition(
    "ExperimentConcludeView",
    ConclusionSerializer,
    roles.RUN_EXPERIMENTS,
    "Running -> concluded, with the conclusion; cells not yet processed go back to the "
    "released recipe.",
    lambda e, data, request: services.conclude_experiment(
        e, conclusion=data["conclusion"], by=request.user
    ),
)
ExperimentCancelView = _transition(
    "ExperimentCancelView",
    CancelReasonSerializer,
    roles.RUN_EXPERIMENTS,
    "Draft or running -> cancelled; cells not yet processed go back to the released recipe.",
    lambda e, data, request: services.cancel_experiment(e, reason=data["reason"], by=request.user),
)
