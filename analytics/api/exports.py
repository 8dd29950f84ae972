"""The engineers' API of exports: the selected measurements as a CSV or XLSX download."""

from __future__ import annotations

from collections.abc import Iterator

from django import forms
from django.http import FileResponse, StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request

from analytics import exports
from batches.models import Measurement
from core import roles
from core.api import EngineerAPIView, engineer_errors
from quality.api.figures import SELECTION_PARAMETERS, selection_of


class _JSONErrorsOnly(DefaultContentNegotiation):
    """`format` names the export's file format here, not one of DRF's renderers: errors are
    always JSON, whatever it says."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class MeasurementExportView(EngineerAPIView):
    permissions = {"GET": roles.VIEW_CELLS}
    renderer_classes = [JSONRenderer]
    content_negotiation_class = _JSONErrorsOnly

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "format", str, enum=list(exports.FORMATS), description="File format (csv)"
            ),
            OpenApiParameter("parameter", str, description="One parameter's measurements only"),
            *SELECTION_PARAMETERS,
        ],
        responses={
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.STR,
                description="A header, then a row per measurement: "
                + ", ".join(exports.HEADER)
                + " (occurred_at in RFC 3339; lots as role=code pairs)",
            ),
            (200, exports.FORMATS["xlsx"]): OpenApiResponse(
                OpenApiTypes.BINARY,
                description="The same columns in a workbook, occurred_at in the plant's time zone",
            ),
            **engineer_errors(400, 401, 403),
        },
        description="The selected results' measurements, each with its cell, batch, design, "
        "line, station, step, equipment, recipe version, the cell's lots and the time, in the "
        "order they occurred; streamed, so any size downloads in bounded memory.",
    )
    def get(self, request: Request) -> StreamingHttpResponse | FileResponse:
        query = request.query_params
        selection = selection_of(query, format=tuple(exports.FORMATS))
        parameter = _parameter(query.get("parameter", ""))
        file_format = query.get("format") or "csv"
        name = f"measurements-{timezone.localtime():%Y%m%d-%H%M%S}.{file_format}"
        if file_format == "xlsx":
            return FileResponse(
                exports.write_xlsx(selection, parameter),
                as_attachment=True,
                filename=name,
                content_type=exports.FORMATS["xlsx"],
            )
        chunks = exports.csv_chunks(selection, parameter)
        # The query starts with the first chunk: a database error is answered here, in the
        # error format, rather than cutting a download short.
        first = next(chunks, b"")

        def content() -> Iterator[bytes]:
            # A generator, so that the response closes it (itertools.chain has no close()):
            # a client gone mid-download ends the export's COPY and its transaction there and
            # then, before Django looks at the connection for the next request.
            yield first
            yield from chunks

        response = StreamingHttpResponse(content(), content_type=exports.FORMATS["csv"])
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response


def _parameter(name: str) -> str:
    """The parameter asked for ("" for all), or 400 `invalid` if no measurement has that name."""
    if not name:
        return ""
    try:
        name = forms.SlugField(max_length=60).clean(name)
    except forms.ValidationError as error:
        raise exceptions.ValidationError({"parameter": error.messages}) from None
    if not Measurement.objects.filter(name=name).exists():
        raise exceptions.ValidationError({"parameter": [f"No measurement is named {name}."]})
    return name
