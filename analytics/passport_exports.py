"""A batch's passports as one ZIP: requested on the batch page, built by a worker, downloaded.

One JSON file per good cell (completed, not scrapped, not on an open hold), named by its serial;
a cell without a passport is left out and counted. The file lands under MEDIA_ROOT/passports/ and
the export row says whether it is ready, who asked and when.
"""

from __future__ import annotations

import json
import logging
import os
import zipfile
from functools import partial
from pathlib import Path
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from analytics.models import PassportExport
from analytics.passport import cells_for_passport, passports_of
from audit.services import record_event
from batches.models import Batch
from core.api import DATABASE_UNAVAILABLE

logger = logging.getLogger(__name__)

BUILD_EXPORT = "analytics.tasks.build_passport_export"
FOLDER = "passports"


def export_path(export: PassportExport) -> Path:
    return Path(settings.MEDIA_ROOT) / export.file


@transaction.atomic
def request_export(batch: Batch, *, by: Any, send: bool = True) -> PassportExport:
    """Ask for `batch`'s passports; sent to the workers once this transaction commits (unless
    `send` is False: the caller builds it itself)."""
    export = PassportExport.objects.create(
        batch=batch, requested_by=by if getattr(by, "pk", None) else None
    )
    record_event(
        actor=by,
        verb="passport_export_requested",
        subject_type="batch",
        subject=batch.code,
        data={"export": export.pk},
    )
    if send:
        transaction.on_commit(partial(_send, export.pk))
    return export


def _send(export_id: int) -> None:
    try:
        current_app.signature(BUILD_EXPORT).apply_async(
            args=[export_id], queue=settings.CELERY_TASK_DEFAULT_QUEUE
        )
    except Exception:  # the broker is down: say so on the export; the user asks again
        logger.warning("Broker unavailable; passport export %s not sent", export_id)
        PassportExport.objects.filter(pk=export_id, status=PassportExport.Status.REQUESTED).update(
            status=PassportExport.Status.FAILED,
            finished_at=timezone.now(),
            error="The workers could not be reached; ask again.",
        )


def build_export(export_id: int) -> PassportExport | None:
    """The worker's side: write the ZIP and mark the export ready (or failed, saying why). An
    export no longer requested is left alone, so a task delivered twice builds it once."""
    export = PassportExport.objects.select_related("batch").get(pk=export_id)
    if export.status != PassportExport.Status.REQUESTED:
        return None
    try:
        cells = list(cells_for_passport().filter(batch=export.batch).order_by("position"))
        passports, _refused = passports_of(cells)
        export.file = f"{FOLDER}/{export.batch.code}-{export.pk}.zip"
        target = export_path(export)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial_file = target.with_suffix(".zip.part")
        with zipfile.ZipFile(partial_file, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for serial, body in passports.items():
                archive.writestr(f"{serial}.json", json.dumps(body, indent=2, sort_keys=True))
        os.replace(partial_file, target)  # never a half-written ZIP under the final name
    except DATABASE_UNAVAILABLE:
        raise  # the task tries again
    except Exception as error:  # anything else will not pass by trying again: say so
        logger.exception("Passport export %s failed", export_id)
        PassportExport.objects.filter(pk=export_id).update(
            status=PassportExport.Status.FAILED, finished_at=timezone.now(), error=str(error)
        )
        return None
    PassportExport.objects.filter(pk=export_id, status=PassportExport.Status.REQUESTED).update(
        status=PassportExport.Status.READY,
        file=export.file,
        cells=len(passports),
        finished_at=timezone.now(),
    )
    export.refresh_from_db()
    return export
