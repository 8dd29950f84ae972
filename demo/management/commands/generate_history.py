"""A year of the Yokohama pilot line on top of the demo seed (demo.history)."""

from __future__ import annotations

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from batches.models import Batch
from demo.history import generate_history
from lines.models import Line


class Command(BaseCommand):
    help = "Generate N cells of Yokohama-line history over the past year (binary COPY)."

    def add_arguments(self, parser):
        parser.add_argument("--cells", type=int, default=10_000)
        parser.add_argument("--days", type=int, default=365)
        parser.add_argument("--seed", type=int, default=2026)

    def handle(self, *args, cells: int, days: int, seed: int, **options):
        if not Line.objects.filter(code="yokohama").exists():
            self.stdout.write("no demo seed yet: running seed_demo first")
            call_command("seed_demo", verbosity=0)
        if Batch.objects.filter(code__regex=r"^YOK-\d{6}-").exists():
            raise CommandError("This database has its history already: generate into a new one.")
        counts = generate_history(
            cells, days=days, seed=seed, out=lambda line: self.stdout.write(line)
        )
        for table, count in sorted(counts.items()):
            self.stdout.write(f"  {table:14} {count:>12,}")
