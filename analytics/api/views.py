"""The battery passport over the engineers' API."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from analytics.passport import passport_of
from core import roles
from core.api import ApiErrorSerializer, EngineerAPIView, engineer_errors


class PassportSerializer(serializers.Serializer):
    generalProductInformation = serializers.DictField(  # noqa: N815 (the data model's names)
        help_text="Battery Pass 1.2.0 GeneralProductInformation"
    )
    materialComposition = serializers.DictField(help_text="Battery Pass 1.2.0 MaterialComposition")  # noqa: N815
    performanceAndDurability = serializers.DictField(  # noqa: N815
        help_text="Battery Pass 1.2.0 PerformanceAndDurability"
    )
    carbonFootprint = serializers.DictField(  # noqa: N815
        help_text="Battery Pass 1.2.0 CarbonFootprintForBatteries"
    )


class CellPassportView(EngineerAPIView):
    permissions = {"GET": roles.VIEW_CELLS}

    @extend_schema(
        summary="A cell's battery passport (Battery Pass Data Model 1.2.0)",
        responses={
            200: PassportSerializer,
            **engineer_errors(401, 403),
            404: OpenApiResponse(ApiErrorSerializer, description="unknown_cell"),
            409: OpenApiResponse(
                ApiErrorSerializer,
                description="No passport yet: not_completed, scrapped, on_hold, no_master_data "
                "(the design has no released master data), no_site_address (the line's site "
                "has no postal address), no_capacity_measured",
            ),
        },
    )
    def get(self, request: Request, serial: str) -> Response:
        return Response(passport_of(serial))
