"""Station API views: authenticate the station, validate the shape, call one service, reply."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.parsers import MultiPartParser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from batches.models import Cell
from batches.recipe_overrides import version_served_to
from batches.services import check_lots_to_load, check_track_in
from core.api import ANY_OPERATION
from core.errors import DomainError, NotFound
from core.http import declared_length, read_capped_body
from core.parsers import JSONParser
from core.validation import is_identifier
from formation import storage as cycler_storage
from formation.cycler import FORMAT_BY_SUFFIX, format_named
from lines.models import RecipeVersion, Station
from lines.services import active_recipe_version
from quality.experiments.selectors import arm_lots
from stations import intake
from stations.api import serializers as s
from stations.auth import STATION_THROTTLES, IsStation, StationIdentity, StationTokenAuthentication
from stations.schema import MAX_CYCLER_FILE_BYTES, MAX_RESULTS_BODY_BYTES, decode_results
from stations.selectors import find_entry

ERRORS = {
    code: OpenApiResponse(s.ErrorSerializer, description=text)
    for code, text in {
        400: "invalid: the body's shape is wrong (per-index errors under errors.results)",
        401: "not_authenticated: missing, unknown or revoked token",
        404: "unknown_cell, or not_found",
        409: "wrong_step, wrong_station, on_hold, scrapped, event_id_reused; at track-in also "
        "lot_unusable, lot_on_hold, no_recipe",
        413: "payload_too_large",
        415: "unsupported_format",
        **ANY_OPERATION,
    }.items()
}

RESULT_EXAMPLE = {
    "event_id": "PR-PRS-1-000123",
    "cell": "PROTO-250101-01-0001",
    "occurred_at": "2025-01-01T09:30:00+09:00",
    "verdict": "pass",
    "measurements": {"peak_pressure_mpa": 501.2, "dwell_s": 300.5, "temperature_c": 60.1},
    "curves": {"pressure": {"t_s": [0.0, 0.1, 0.2], "values": [0.0, 1.7, 3.3], "unit": "MPa"}},
    "equipment": "PR-CIP-1-cycle-42",
    "defects": [],
}


def _errors(*codes: int) -> dict[int, OpenApiResponse]:
    """The error answers of a station operation: those named, then those of ANY_OPERATION."""
    return {code: ERRORS[code] for code in (*codes, *ANY_OPERATION)}


def recipe_body(version: RecipeVersion) -> dict[str, Any]:
    return {
        "name": version.recipe.name,
        "version": version.version,
        "parameters": version.parameters_dict(),
    }


class StationView(APIView):
    """Base of the station endpoints: station token only, JSON only."""

    authentication_classes = [StationTokenAuthentication]
    permission_classes = [IsStation]
    throttle_classes = STATION_THROTTLES  # per station (its code): settings.STATION_API_*_RATE
    renderer_classes = [JSONRenderer]
    parser_classes = [JSONParser]

    def station(self, request: Request) -> Station:
        identity: StationIdentity = request.user
        return identity.station


class StationDetailView(StationView):
    @extend_schema(
        tags=["station"],
        summary="This station and the recipe version it should run",
        responses={200: s.StationSerializer, **_errors(401)},
    )
    def get(self, request: Request) -> Response:
        station = self.station(request)
        try:
            recipe = recipe_body(active_recipe_version(station))
        except DomainError:
            recipe = None  # no released recipe for this station kind yet
        return Response(
            {
                "code": station.code,
                "kind": station.kind,
                "line": station.line.code,
                "state": station.state,
                "recipe": recipe,
            }
        )


class TrackInView(StationView):
    @extend_schema(
        tags=["station"],
        summary="Interlock: may this cell be processed here now?",
        request=s.TrackInSerializer,
        responses={200: s.TrackInResponseSerializer, **_errors(400, 401, 404, 409, 415)},
    )
    def post(self, request: Request) -> Response:
        station = self.station(request)
        serializer = s.TrackInSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        serial = serializer.validated_data["cell"]
        cell = (
            Cell.objects.select_related("batch__route", "next_step").filter(serial=serial).first()
        )
        if cell is None:
            raise NotFound("unknown_cell", _("No cell %(serial)s.") % {"serial": serial})
        step = check_track_in(cell, station)
        if lots := serializer.validated_data.get("material_lots"):
            check_lots_to_load(lots, at=timezone.now())
            check_arm_lots(cell, station.kind, lots)
        version = version_served_to(cell, station)  # an experiment arm's, else the released
        if version is None:
            raise DomainError(
                "no_recipe",
                _("No released %(step)s recipe for cell %(serial)s's design.")
                % {"step": station.kind, "serial": cell.serial},
            )
        return Response(
            {
                "cell": cell.serial,
                "batch": cell.batch.code,
                "step": step.station_kind,
                "recipe": recipe_body(version),
            }
        )


def check_arm_lots(cell: Cell, station_kind: str, lots: dict[str, str]) -> None:
    """A cell in an experiment arm of material lots is loaded with its arm's lots only."""
    for role, (lot, arm) in arm_lots(cell.pk, station_kind).items():
        if role in lots and lots[role] != lot:
            raise DomainError(
                "wrong_lot_for_arm",
                _(
                    "Cell %(serial)s is in experiment arm %(arm)s: "
                    "load %(role)s lot %(lot)s, not %(sent)s."
                )
                % {"serial": cell.serial, "arm": arm, "role": role, "lot": lot, "sent": lots[role]},
            )


def _require_json(request: Request) -> None:
    content_type = request.META.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise DomainError(
            "unsupported_format",
            _("Send results as application/json, not %(content_type)s.")
            % {"content_type": content_type or "no content type"},
            status=415,
        )


class ResultsView(StationView):
    @extend_schema(
        tags=["station"],
        summary="Send 1 to 1000 results (stored before the reply, processed by workers)",
        request=s.ResultsRequestSerializer,
        responses={202: s.ResultsAcceptedSerializer, **_errors(400, 401, 409, 413, 415)},
        examples=[
            OpenApiExample("One pressing result", value={"results": [RESULT_EXAMPLE]}),
            OpenApiExample("Accepted", value={"accepted": 1, "duplicates": 0}, response_only=True),
        ],
    )
    def post(self, request: Request) -> Response:
        station = self.station(request)
        _require_json(request)
        # Read and validate here, not through DRF's parser: the size cap must apply before the
        # body is read, and msgspec validates 1000 results in a fraction of a serializer's time.
        results = decode_results(
            read_capped_body(
                request._request, MAX_RESULTS_BODY_BYTES, advice="send fewer results per request"
            )
        )
        accepted = intake.accept_results(station, results)
        return Response(
            {"accepted": accepted.accepted, "duplicates": accepted.duplicates},
            status=status.HTTP_202_ACCEPTED,
        )


STATUS_FIELDS = (
    "event_id",
    "kind",
    "status",
    "reason",
    "reason_code",
    "outcome",
    "violations",
    "received_at",
    "processed_at",
)


class ResultStatusView(StationView):
    @extend_schema(
        tags=["station"],
        summary="The processing status of one of this station's results or cycler files",
        responses={200: s.ResultStatusSerializer, **_errors(401, 404)},
    )
    def get(self, request: Request, event_id: str) -> Response:
        # No stored event id holds a control character (core.validation), and PostgreSQL refuses
        # a NUL even in a query: such a path names no result.
        if not is_identifier(event_id):
            raise NotFound("not_found", _("No event id contains control characters."))
        entry = find_entry(self.station(request), event_id, STATUS_FIELDS)
        if entry is None:  # another station's event looks the same as one never sent
            raise NotFound(
                "not_found",
                _("This station never sent event %(event_id)s.") % {"event_id": event_id},
            )
        return Response(
            {
                "event_id": entry.event_id,
                "kind": entry.kind,
                "status": entry.status,
                "reason": entry.reason,
                "reason_code": entry.reason_code,
                "outcome": entry.outcome or None,
                "violations": entry.violations,
                "received_at": entry.received_at,
                "processed_at": entry.processed_at,
            }
        )


class StateView(StationView):
    @extend_schema(
        tags=["station"],
        summary="Report the station's state (running, idle, down, maintenance)",
        request=s.StateSerializer,
        responses={202: s.StateAcceptedSerializer, **_errors(400, 401, 415)},
    )
    def post(self, request: Request) -> Response:
        reply = intake.accept_state(self.station(request), request.data, by=request.user.actor)
        return Response(reply, status=status.HTTP_202_ACCEPTED)


class StreamedCyclerFile(UploadedFile):
    """A cycler file spooled to a temporary file while it arrived, with its sha256."""

    def __init__(self, path: Path, name: str, size: int, sha256: str) -> None:
        super().__init__(file=None, name=name, size=size)
        self.path = path
        self.sha256 = sha256


class CyclerFileUploadHandler(FileUploadHandler):
    """Spools the upload to a temporary file (formation.storage.spool_dir), hashing each chunk as
    it passes: a 512 MiB file is never in memory and never read twice before it is stored."""

    chunk_size = 1024 * 1024

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        super().new_file(*args, **kwargs)
        self.file = tempfile.NamedTemporaryFile(
            dir=cycler_storage.spool_dir(), delete=False, suffix=".part"
        )
        self.sha256 = hashlib.sha256()
        self.size = 0

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        self.size += len(raw_data)
        if self.size > MAX_CYCLER_FILE_BYTES:
            self.discard()
            raise DomainError(
                "payload_too_large", _("A cycler file may be at most 512 MiB."), status=413
            )
        self.sha256.update(raw_data)
        self.file.write(raw_data)
        return None  # consumed: no later handler keeps a copy

    def file_complete(self, file_size: int) -> StreamedCyclerFile:
        self.file.flush()
        os.fsync(self.file.fileno())  # durable before the 202 (when the storage is this disk)
        self.file.close()
        return StreamedCyclerFile(
            Path(self.file.name), self.file_name, self.size, self.sha256.hexdigest()
        )

    def upload_interrupted(self) -> None:
        self.discard()

    def discard(self) -> None:
        if getattr(self, "file", None) is not None:
            self.file.close()
            Path(self.file.name).unlink(missing_ok=True)


class CyclerFileView(StationView):
    parser_classes = [MultiPartParser]

    @extend_schema(
        tags=["station"],
        summary="Upload a formation cycler file (processed like a result)",
        request={"multipart/form-data": s.CyclerFileSerializer},
        responses={202: s.ResultsAcceptedSerializer, **_errors(400, 401, 409, 413, 415)},
    )
    def post(self, request: Request) -> Response:
        station = self.station(request)
        declared = declared_length(request._request) or 0
        if declared > MAX_CYCLER_FILE_BYTES + 1024 * 1024:  # the file plus the form's few fields
            raise DomainError(
                "payload_too_large", _("A cycler file may be at most 512 MiB."), status=413
            )
        if not request.META.get("CONTENT_TYPE", "").startswith("multipart/form-data"):
            raise DomainError(
                "unsupported_format", _("Upload cycler files as multipart/form-data."), status=415
            )
        request._request.upload_handlers = [CyclerFileUploadHandler(request._request)]
        serializer = s.CyclerFileSerializer(data=request.data)
        upload = request.FILES.get("file")
        try:
            serializer.is_valid(raise_exception=True)
            data = serializer.validated_data
            named = data.get("format")
            file_format = (
                format_named(named)
                if named
                else FORMAT_BY_SUFFIX.get(Path(upload.name).suffix.lower(), "")
            )
            name = cycler_storage.stored_name(station.code, upload.sha256)
            cycler_storage.store(name, upload.path)  # consumes the spooled file
            accepted = intake.accept_cycler_file(
                station,
                event_id=data["event_id"],
                cell_serial=data["cell"],
                file_format=file_format,
                name=name,
                sha256=upload.sha256,
                size=upload.size,
                original_name=upload.name,
                fixture=data.get("fixture", ""),
                channel=data.get("channel", ""),
            )
        finally:
            if isinstance(upload, StreamedCyclerFile):
                upload.path.unlink(missing_ok=True)  # refused before it was stored
        return Response(
            {"accepted": accepted.accepted, "duplicates": accepted.duplicates},
            status=status.HTTP_202_ACCEPTED,
        )
