"""Write a batch's passports as a ZIP here and now, without a worker."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from analytics.passport_exports import build_export, export_path, request_export
from batches.models import Batch


class Command(BaseCommand):
    help = "Build the passport ZIP of a batch (one JSON per good cell) under MEDIA_ROOT/passports."

    def add_arguments(self, parser) -> None:
        parser.add_argument("batch", help="The batch code")

    def handle(self, *args, batch: str, **options) -> None:
        try:
            found = Batch.objects.get(code=batch)
        except Batch.DoesNotExist:
            raise CommandError(f"No batch {batch}.") from None
        export = build_export(request_export(found, by="export_passports", send=False).pk)
        if export is None:
            raise CommandError("The export could not be written; see the log.")
        self.stdout.write(f"{export.cells} passports in {export_path(export)}")
