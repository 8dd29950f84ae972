"""`manage.py partitions`: what beat's tasks do (core.tasks), by hand, and what they cannot.

Makes the partitions of this month and PARTITION_MONTHS_AHEAD more (or --months-ahead), then
archives processed inbox rows older than INBOX_RETENTION_DAYS (unless --no-archive), and lists
the partitions. With --freeze, run as the tables' owner, it also VACUUMs (FREEZE) the partitions
of months that have ended and were not frozen yet: the runtime role may not VACUUM.
"""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import connection

from core import partitions


class Command(BaseCommand):
    help = "Make the monthly partitions ahead, archive old processed inbox rows, list them."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--months-ahead", type=int, default=settings.PARTITION_MONTHS_AHEAD)
        parser.add_argument("--no-archive", action="store_true")
        parser.add_argument("--freeze", action="store_true")

    def handle(self, *args, months_ahead: int, no_archive: bool, freeze: bool, **options) -> None:
        created = partitions.ensure_partitions(months_ahead)
        self.stdout.write(f"Partitions made: {sum(created.values())} {created}")
        if not no_archive:
            moved = partitions.archive_inbox(settings.INBOX_RETENTION_DAYS)
            self.stdout.write(f"Processed inbox rows archived: {moved}")
        if freeze:
            for table in partitions.closed_unfrozen_partitions():
                with connection.cursor() as cursor:
                    cursor.execute(f"VACUUM (FREEZE, ANALYZE) {connection.ops.quote_name(table)}")
                self.stdout.write(f"Frozen: {table}")
        if options["verbosity"] > 1:
            for table in partitions.TABLES:
                for name, bound in partitions.partitions(table):
                    self.stdout.write(f"{name}: {bound}")
