"""How long a 10,000-point control chart takes: the arithmetic alone, the API's reply and the
chart page, on the seeded demo plus 10,000 stacked cells on the Yokohama line (bench_pages's
cells), and in headless Chromium (Debian's, when installed) the time from asking for the chart
page to both charts drawn.

Runs in its own throwaway database on the server of DATABASE_URL (or the embedded one), like
bench_pages. Prints the median of a few runs. Figures only: nothing here asserts a timing.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

from bench.bench_pages import ROOT, _embedded_url, _with_db

POINTS = 10_000
REPEATS = 5


def main() -> None:
    sys.path.insert(0, str(ROOT))
    import psycopg

    server_url = os.environ.get("DATABASE_URL") or _embedded_url()
    name = f"bench_spc_{os.getpid()}"
    admin = psycopg.connect(_with_db(server_url, "postgres"), autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        env = {**os.environ, "DATABASE_URL": _with_db(server_url, name), "DJANGO_DEBUG": "0"}
        env["DJANGO_HTTPS"] = "0"  # the test client speaks plain HTTP; no redirect to time
        env.setdefault("DJANGO_SECRET_KEY", "bench-only-secret-key-not-for-deployment")
        subprocess.run(
            [sys.executable, "-c", "from bench.bench_spc import measure; measure()"],
            cwd=ROOT,
            env=env,
            check=True,
        )
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def _median_ms(run) -> float:
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def measure() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mes.settings")
    import django

    django.setup()
    import random

    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.test import Client
    from rest_framework.test import APIClient

    from bench.bench_pages import add_cells
    from quality.spc import statistics as spc

    rng = random.Random(3)
    values = [rng.gauss(100, 2) for _ in range(POINTS)]
    print(f"I-MR arithmetic, {POINTS} points: {_median_ms(lambda: spc.imr_chart(values)):.1f} ms")
    groups = [values[i : i + 5] for i in range(0, POINTS, 5)]
    ms = _median_ms(lambda: spc.xbar_chart(groups, kind=spc.XBAR_R))
    print(f"X-bar R arithmetic, {len(groups)} subgroups of 5: {ms:.1f} ms", flush=True)

    call_command("migrate", verbosity=0)
    call_command("seed_demo", verbosity=0)
    add_cells(POINTS)
    quentin = User.objects.get(username="quentin")
    browser, api = Client(), APIClient()
    browser.force_login(quentin)
    api.force_authenticate(quentin)
    query = {"line": "yokohama", "step": "stacking", "parameter": "stack_mass_g"}
    first = api.get("/api/v1/spc", query)
    if first.status_code != 200:
        raise SystemExit(f"{first.status_code} {first.content[:2000]!r}")
    n = first.json()["n"]
    for label, ask in (
        ("GET /api/v1/spc I-MR", lambda: api.get("/api/v1/spc", query)),
        (
            "GET /api/v1/spc X-bar R by 5",
            lambda: api.get("/api/v1/spc", {**query, "chart": "xbar_r", "subgroup": "5"}),
        ),
        ("chart page I-MR", lambda: browser.get("/quality/spc/", query)),
        (
            "capability summary, stacking",
            lambda: browser.get("/quality/spc/capability/yokohama/", {"step": "stacking"}),
        ),
    ):
        status = ask().status_code
        print(f"{label}, {n} points: {_median_ms(ask):.0f} ms (status {status})", flush=True)
    _in_the_browser(query, n)


def _in_the_browser(query: dict, n: int) -> None:
    """Navigation start to both charts drawn by Chart.js, as an engineer waits for them."""
    import threading
    from pathlib import Path
    from urllib.parse import urlencode

    from django.contrib.staticfiles.handlers import StaticFilesHandler
    from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
    from django.core.wsgi import get_wsgi_application

    from demo.management.commands.screenshots import CHROMIUM, CHROMIUM_ARGS

    if not Path(CHROMIUM).exists():
        print("chart drawn in the browser: skipped (no Chromium)")
        return
    from playwright.sync_api import sync_playwright

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args) -> None:
            pass

    server = ThreadedWSGIServer(("127.0.0.1", 0), Quiet)
    server.set_app(StaticFilesHandler(get_wsgi_application()))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    drawn = (
        "() => ['spc-main', 'spc-range'].every(id => "
        "window.Chart && Chart.getChart(document.getElementById(id)))"
    )
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = chromium.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{base}/accounts/login/")
            page.fill("#id_username", "quentin")
            page.fill("#id_password", "pilot-line-demo")
            page.click("#sign-in button[type=submit]")
            page.wait_for_url(f"{base}/")
            times = []
            for _ in range(REPEATS):
                page.goto(f"{base}/quality/spc/?{urlencode(query)}", wait_until="commit")
                page.wait_for_function(drawn, timeout=60_000)
                times.append(page.evaluate("performance.now()"))
            chromium.close()
        print(
            f"chart page in Chromium, asked to both charts drawn, {n} points: "
            f"{statistics.median(times):.0f} ms",
            flush=True,
        )
    finally:
        server.shutdown()
        server.server_close()
