"""Screenshots of the dashboard from the seeded demo, with a real headless Chromium.

    python manage.py migrate && python manage.py seed_demo && python manage.py screenshots

Serves this project in-process on a free local port (or uses --base-url), signs in as the demo
admin (who sees every action) and writes PNGs of the main pages to docs/screenshots/, at 1280 px,
in English, and the main ones again in Japanese (`-ja`).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.staticfiles.handlers import StaticFilesHandler
from django.core.management.base import BaseCommand, CommandError
from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
from django.core.wsgi import get_wsgi_application
from django.db.models import F

from batches.models import Batch, Cell, Curve, Hold

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


# Taken in Japanese too: what a Kanagawa engineer opens most, and planning a batch.
JAPANESE = {"home.png", "line-yokohama.png", "batch.png", "cell.png", "holds.png", "batch-new.png"}


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the stdlib's name)
        pass


class Command(BaseCommand):
    help = (
        "Take PNG screenshots of the line view, a batch and a cell (and more) from the demo data."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--out", default=str(Path(settings.BASE_DIR) / "docs" / "screenshots"))
        parser.add_argument("--username", default="ada")  # the admin: sees every action form
        parser.add_argument("--password", default="pilot-line-demo")
        parser.add_argument("--base-url", default="", help="Use a running server instead")
        parser.add_argument("--width", type=int, default=1280)

    def handle(self, *args: Any, **options: Any) -> None:
        if not Path(CHROMIUM).exists():
            raise CommandError(f"{CHROMIUM} is missing: apt-get install -y chromium")
        pages = self.pages_to_take()
        out = Path(options["out"])
        out.mkdir(parents=True, exist_ok=True)
        server = None
        base = options["base_url"].rstrip("/")
        if not base:
            server = ThreadedWSGIServer(("127.0.0.1", 0), QuietHandler, allow_reuse_address=True)
            server.set_app(StaticFilesHandler(get_wsgi_application()))
            threading.Thread(target=server.serve_forever, daemon=True).start()
            base = f"http://127.0.0.1:{server.server_port}"
        try:
            self.take(base, pages, out, options)
        finally:
            if server is not None:
                server.shutdown()
                server.server_close()

    def pages_to_take(self) -> list[tuple[str, str, bool]]:
        """(file name, path, full page) of each screenshot, chosen from what the demo holds."""
        held = (
            Batch.objects.filter(holds__status=Hold.Status.OPEN, line__code="yokohama")
            .order_by("code")
            .first()
        ) or Batch.objects.order_by("code").first()
        if held is None:
            raise CommandError("No batches: run `python manage.py seed_demo` first.")
        # A cell that went furthest along its route and has curves to plot.
        cell = (
            Cell.objects.filter(runs__curves__isnull=False, batch__line__code="yokohama")
            .order_by(F("completed_at").desc(nulls_last=True), "serial")
            .first()
        ) or Cell.objects.filter(pk__in=Curve.objects.values("run__cell_id")).first()
        pages = [
            ("home.png", "/", False),
            ("line-yokohama.png", "/lines/yokohama/", True),
            ("line-proto.png", "/lines/proto/", True),
            ("batch.png", f"/batches/{held.code}/", True),
            ("holds.png", "/holds/", False),
            ("recipes.png", "/recipes/?line=proto", False),
            ("lot.png", "/lots/SE-2611-01/", False),
            ("labels.png", f"/batches/{held.code}/labels/", False),
            ("station-results.png", "/station-results/", False),
            ("hold-rules.png", "/holds/rules/", True),
            ("batch-new.png", "/batches/new/?line=yokohama", False),
            ("line-oee.png", "/lines/yokohama/oee/", True),
            ("spc-capability.png", "/quality/spc/capability/yokohama/", False),
            ("yield.png", "/quality/yield/?line=yokohama", False),
            ("zone.png", "/zones/yokohama-dry-room/", False),
            ("equipment.png", "/equipment/", False),
            ("ncrs.png", "/ncrs/", False),
        ]
        if cell is not None:
            pages.insert(4, ("cell.png", f"/cells/{cell.serial}/", True))
        return pages

    def take(self, base: str, pages: list, out: Path, options: dict[str, Any]) -> None:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            # English, then the pages a Japanese engineer opens most, as the browser asks for them.
            japanese = [p for p in pages if p[0] in JAPANESE]
            for locale, suffix, chosen in (("en-US", "", pages), ("ja-JP", "-ja", japanese)):
                context = browser.new_context(
                    viewport={"width": options["width"], "height": 1000},
                    device_scale_factor=1,
                    locale=locale,
                )
                page = context.new_page()
                page.goto(f"{base}/accounts/login/")
                page.fill("#id_username", options["username"])
                page.fill("#id_password", options["password"])
                page.click("#sign-in button[type=submit]")
                page.wait_for_url(f"{base}/")
                for name, path, full_page in chosen:
                    target = out / name.replace(".png", f"{suffix}.png")
                    page.goto(f"{base}{path}")
                    page.wait_for_load_state("networkidle")
                    page.wait_for_timeout(300)  # charts draw after load
                    page.screenshot(path=str(target), full_page=full_page)
                    self.stdout.write(f"{target}  ({path})")
                context.close()
            browser.close()
