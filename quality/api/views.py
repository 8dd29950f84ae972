"""The engineers' API of quality's rules: every hold rule with the thresholds in force."""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import serializers

from batches.models import HoldRule
from core import roles
from core.api import EngineerListView, engineer_errors
from quality import selectors
from quality.selectors import HoldRuleHistory


class HoldRuleSerializer(serializers.Serializer):
    code = serializers.CharField()
    label = serializers.CharField()
    holds = serializers.CharField(help_text="What a firing holds: cell, batch, press cycle, ...")
    version = serializers.IntegerField(
        source="shown.version", allow_null=True, help_text="The version in force, else the latest"
    )
    parameters = serializers.DictField(
        source="shown.parameters",
        child=serializers.JSONField(),
        allow_null=True,
        help_text="The thresholds of that version",
    )
    active = serializers.BooleanField(help_text="A version of the rule is in force: it fires")
    defaults = serializers.DictField(
        source="thresholds",
        child=serializers.JSONField(),
        help_text="What a threshold the version leaves out is taken to be",
    )


class HoldRuleListView(EngineerListView):
    """Every hold rule the system knows, with the version in force (or the latest, retired)."""

    permissions = {"GET": roles.VIEW_HOLDS}
    serializer_class = HoldRuleSerializer

    @extend_schema(responses={200: HoldRuleSerializer(many=True), **engineer_errors(401, 403, 404)})
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> list[HoldRuleHistory] | QuerySet:
        if getattr(self, "swagger_fake_view", False):  # the schema generator reads no rows
            return HoldRule.objects.none()
        return selectors.hold_rule_histories()
