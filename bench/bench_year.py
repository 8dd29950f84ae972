"""A year of the Yokohama line: generation time, database size per table, p50/p95/max of every
page and engineers' API read, and the ingestion rate at that size against an empty database.

Runs only with BENCH_SCALE=year (`make bench BENCH_SCALE=year`) or when named
(`python -m bench year`): the default `make bench` stays quick. BENCH_CELLS cells (default
1,000,000) are generated into a throwaway database on the server of DATABASE_URL, dropped at the
end. BENCH_YEAR_DB names a database to keep instead: generated if it does not exist yet, measured
again without regenerating if it does. BENCH_YEAR_READS=text times only the reads whose label
holds that text (comma-separated for several), and no ingestion. The web server is gunicorn in
its own processes, the load generator this process with a session cookie logged in as the
quality engineer. Figures only: nothing here asserts a timing; they are printed and written to
bench/results/year-<date>.txt.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from urllib.parse import quote
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CELLS = int(os.environ.get("BENCH_CELLS", "1000000"))
ONLY = [part for part in os.environ.get("BENCH_YEAR_READS", "").split(",") if part]
REPEATS = int(os.environ.get("BENCH_YEAR_REPEATS", "20"))
SLOW_S = 5.0  # a read first timed slower than this is timed 3 times, not REPEATS: the bench ends
TIMEOUT_S = float(os.environ.get("BENCH_YEAR_TIMEOUT", "120"))  # a read longer is cut short
INGEST_RESULTS, INGEST_PER_REQUEST, INGEST_ROUNDS, INGEST_TURNS = 3000, 100, 5, 2
RESULTS = ROOT / "bench" / "results"
PLANT = ZoneInfo(os.environ.get("TIME_ZONE", "Asia/Tokyo"))  # the plant's zone (settings)

_lines: list[str] = []


def say(line: str = "") -> None:
    print(line, flush=True)
    _lines.append(line)


def main() -> None:
    if os.environ.get("BENCH_SCALE") != "year" and "year" not in " ".join(sys.argv[1:]):
        print("skipped: BENCH_SCALE=year runs it (a year of data takes half an hour)")
        return
    sys.path.insert(0, str(ROOT))
    import psycopg

    from bench.bench_ingestion import _embedded_url, _with_db

    server_url = os.environ.get("DATABASE_URL") or _embedded_url()
    admin = psycopg.connect(_with_db(server_url, "postgres"), autocommit=True)
    given = os.environ.get("BENCH_YEAR_DB", "")
    name = given or f"bench_year_{os.getpid()}"
    url = _with_db(server_url, name)
    env = _env(url)
    say(f"== a year of the Yokohama line, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {_machine()}")
    exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
    try:
        if exists:
            say(f"database {name} as given (BENCH_YEAR_DB): not generated again")
            _vacuum_changed(url)
        else:
            admin.execute(f'CREATE DATABASE "{name}"')
            try:
                _generate(env)
            except BaseException:  # a half-generated database must not be measured next time
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                raise
            if given:
                say(f"database {name} kept (BENCH_YEAR_DB)")
        _checkpoint(url)
        _sizes(url)
        _reads(env)
        if _chosen(FULLEST):
            _fullest(env)
        if ONLY:
            return
        empty = f"bench_year_empty_{os.getpid()}"
        admin.execute(f'CREATE DATABASE "{empty}"')
        try:
            empty_env = _env(_with_db(server_url, empty))
            subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT,
                           env=empty_env, check=True)  # fmt: skip
            _ingestion({"year-sized database": env, "empty database": empty_env})
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{empty}" WITH (FORCE)')
    finally:
        if not given:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
        RESULTS.mkdir(exist_ok=True)
        out = RESULTS / f"year-{datetime.now(UTC):%Y%m%d-%H%M}.txt"
        out.write_text("\n".join(_lines) + "\n")
        print(f"figures written to {out.relative_to(ROOT)}")


def _env(url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": url,
        "CELERY_BROKER_URL": os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0"),
        "CELERY_TASK_DEFAULT_QUEUE": f"bench-year-{uuid.uuid4().hex[:8]}",
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": os.environ.get("DJANGO_SECRET_KEY", "bench-only-secret-key"),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DJANGO_HTTPS": "0",
        "STATION_API_BURST_RATE": "100000/s",
        "STATION_API_SUSTAINED_RATE": "1000000/min",
    }


def _machine() -> str:
    cpus = os.cpu_count()
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = float("nan")
    return f"{cpus} CPUs, load average {load:.1f} at the start"


def _generate(env: dict[str, str]) -> None:
    manage = [sys.executable, "manage.py"]
    started = time.perf_counter()
    subprocess.run([*manage, "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    subprocess.run([*manage, "seed_demo", "-v0"], cwd=ROOT, env=env, check=True)
    say(f"migrated and seeded in {time.perf_counter() - started:.0f} s")
    started = time.perf_counter()
    with subprocess.Popen(
        [*manage, "generate_history", "--cells", str(CELLS)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True,
    ) as generating:  # fmt: skip
        for line in generating.stdout:
            # Its phases and where the time went kept with the figures; progress printed only.
            if line.startswith("  ") and " cells " in line:
                print(line, end="", flush=True)
            else:
                say(line.rstrip())
    if generating.returncode:
        raise subprocess.CalledProcessError(generating.returncode, generating.args)
    say(f"generated {CELLS:,} cells in {time.perf_counter() - started:.0f} s")


def _vacuum_changed(url: str) -> None:
    """Where the server runs no autovacuum (CI's configuration), the tables an earlier run's
    ingestion changed are vacuumed as autovacuum would have: index-only reads otherwise visit the
    table for every row written since."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        if conn.execute("SHOW autovacuum").fetchone()[0] == "on":
            return
        changed = conn.execute(
            "SELECT relid::regclass::text FROM pg_stat_user_tables"
            " WHERE n_ins_since_vacuum > 0 OR n_dead_tup > 0 OR n_mod_since_analyze > 0"
        ).fetchall()
        started = time.perf_counter()
        for (table,) in changed:
            conn.execute(f"VACUUM (ANALYZE) {table}")
    seconds = time.perf_counter() - started
    say(f"autovacuum off: {len(changed)} changed tables vacuumed in {seconds:.0f} s")


def _checkpoint(url: str) -> None:
    """The database written out before reads are timed, as a database in use is between
    checkpoints: right after a load or a vacuum, the checkpointer would write its last
    gigabytes while the reads run, and they would be timed against the disk."""
    import psycopg

    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CHECKPOINT")
    say(f"checkpoint in {time.perf_counter() - started:.0f} s")


def _sizes(url: str) -> None:
    """Size per table with its indexes and TOAST, partitions summed under their parent."""
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute(
            """
            SELECT COALESCE(parent.relname, c.relname), SUM(pg_total_relation_size(c.oid)),
                   SUM(c.reltuples) FILTER (WHERE c.reltuples > 0 AND c.relkind = 'r')
            FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
            LEFT JOIN pg_inherits i ON i.inhrelid = c.oid
            LEFT JOIN pg_class parent ON parent.oid = i.inhparent
            WHERE c.relkind IN ('r', 'p')
            GROUP BY 1 ORDER BY 2 DESC
            """
        ).fetchall()
        total = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
    say(f"\ndatabase size {total / 2**30:.2f} GiB; largest tables (with indexes and TOAST):")
    say(f"{'table':36} {'size':>10} {'rows (est.)':>14}")
    for table, size, tuples in rows[:15]:
        say(f"{table:36} {size / 2**20:8.0f} MB {int(tuples or 0):>14,}")


# ---------------------------------------------------------------- reads


def _reads(env: dict[str, str]) -> None:
    import psycopg
    import requests

    from bench.bench_ingestion import web_and_worker

    with psycopg.connect(env["DATABASE_URL"]) as conn:
        targets = _targets(conn)
    with (
        web_and_worker("bench-year-reads", worker=False, timeout_s=300, env=env) as base,
        psycopg.connect(env["DATABASE_URL"], autocommit=True) as watch,
    ):
        session = requests.Session()
        _login(session, base)
        say(f"\n{REPEATS} requests per read after one warm-up (gunicorn 2 workers x 4 threads),")
        say("exports: time to the first row; ms")
        say(f"{'read':48} {'p50':>8} {'p95':>8} {'max':>8}  n  status")
        for label, path, first_byte in _read_list(targets):
            if _chosen(label):
                _time_read(session, base, label, path, first_byte, watch)
        label = "line view, then its 3 parts side by side"
        if _chosen(label):
            _time_read_with_parts(session, base, label, "/lines/yokohama/", LINE_PARTS)
        label = "batch page, then its holds and timeline"
        if _chosen(label):
            page = f"/batches/{targets['batch']}/"
            _time_read_with_parts(session, base, label, page, [f"{page}history"])


def _chosen(label: str) -> bool:
    return not ONLY or any(part in label for part in ONLY)


def _targets(conn) -> dict[str, str]:
    batch = conn.execute(
        "SELECT code FROM batches_batch WHERE code LIKE 'YOK-%%' AND status = 'completed'"
        " ORDER BY planned_quantity DESC, id LIMIT 1"
    ).fetchone()[0]
    cell = conn.execute(
        "SELECT c.serial FROM batches_cell c JOIN batches_batch b ON b.id = c.batch_id"
        " WHERE b.code = %s AND c.status = 'completed' ORDER BY c.position LIMIT 1",
        [batch],
    ).fetchone()[0]
    lot = conn.execute(
        "SELECT code FROM batches_materiallot WHERE code LIKE 'POUCH-H-%%'"
        " ORDER BY received_at LIMIT 1"
    ).fetchone()
    consumers = conn.execute(
        "SELECT COUNT(*) FROM batches_consumption c JOIN batches_materiallot l ON l.id = c.lot_id"
        " WHERE l.code = %s",
        [lot[0] if lot else ""],
    ).fetchone()[0]
    cells = conn.execute(
        "SELECT planned_quantity FROM batches_batch WHERE code = %s", [batch]
    ).fetchone()[0]
    return {
        "batch": batch,
        "batch_cells": f"{cells:,}",
        "cell": cell,
        "lot": lot[0] if lot else "AN-2611-01",
        "lot_cells": f"{consumers:,}",
    }


def _read_list(t: dict[str, str]) -> list[tuple[str, str, bool]]:
    now = datetime.now(UTC)
    since = (now - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    spc = f"line=yokohama&step=stacking&parameter=stack_mass_g&since={since}"
    day = (now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    yesterday = datetime.combine(now.astimezone(PLANT).date() - timedelta(days=1), dtime(0), PLANT)
    whole_day = [
        quote(moment.isoformat(), safe="") for moment in (yesterday, yesterday + timedelta(days=1))
    ]
    return [
        ("home", "/", False),
        ("line view yokohama", "/lines/yokohama/", False),
        ("  live: stations", "/lines/yokohama/live/stations", False),
        ("  live: batches", "/lines/yokohama/live/batches", False),
        ("  live: holds", "/lines/yokohama/live/holds", False),
        ("batches", "/batches/", False),
        (f"batch ({t['batch_cells']} cells)", f"/batches/{t['batch']}/", False),
        ("  its holds and timeline", f"/batches/{t['batch']}/history", False),
        ("batch, filtered, page 100", f"/batches/{t['batch']}/?step=formation&page=100", False),
        ("cell", f"/cells/{t['cell']}/", False),
        ("lots", "/lots/", False),
        (f"lot ({t['lot_cells']} consumers)", f"/lots/{t['lot']}/", False),
        ("holds queue", "/holds/", False),
        ("search", f"/search/?q={t['batch']}-000", False),
        ("SPC chart page, 30 days", f"/quality/spc/?{spc}", False),
        ("export CSV 30 days, first row", f"/api/v1/exports/measurements?{spc}", True),
        ("export CSV 1 day all, first row", f"/api/v1/exports/measurements?line=yokohama&since={day}", True),
        ("GET /api/v1/lines", "/api/v1/lines", False),
        ("GET /api/v1/batches", "/api/v1/batches", False),
        (f"GET /api/v1/batches/{{code}} ({t['batch_cells']})", f"/api/v1/batches/{t['batch']}", False),
        ("GET /api/v1/cells/{serial}", f"/api/v1/cells/{t['cell']}", False),
        ("GET /api/v1/lots", "/api/v1/lots", False),
        (f"GET /api/v1/lots/{{code}} ({t['lot_cells']})", f"/api/v1/lots/{t['lot']}", False),
        ("GET /api/v1/holds", "/api/v1/holds", False),
        ("GET /api/v1/spc, 30 days", f"/api/v1/spc?{spc}", False),
        ("GET /api/v1/yield, line", "/api/v1/yield?line=yokohama", False),
        ("GET /api/v1/pareto, line", "/api/v1/pareto?line=yokohama", False),
        ("GET /api/v1/oee, line today", "/api/v1/oee?line=yokohama", False),
        ("GET /api/v1/oee, line yesterday (a whole day)",
         f"/api/v1/oee?line=yokohama&since={whole_day[0]}&until={whole_day[1]}", False),
    ]  # fmt: skip


def _login(session, base: str) -> None:
    # seed_demo's DEMO_PASSWORD; not imported: this process does not set Django up.
    password = os.environ.get("BENCH_YEAR_PASSWORD", "pilot-line-demo")
    page = session.get(f"{base}/accounts/login/", timeout=60)
    token = session.cookies.get("csrftoken") or ""
    reply = session.post(
        f"{base}/accounts/login/",
        data={"username": "quentin", "password": password, "csrfmiddlewaretoken": token},
        headers={"Referer": page.url},
        timeout=60,
        allow_redirects=False,
    )
    if reply.status_code != 302:
        raise SystemExit(f"login refused: {reply.status_code}")


LINE_PARTS = [f"/lines/yokohama/live/{part}" for part in ("stations", "batches", "holds")]


def _time_read_with_parts(session, base: str, label: str, path: str, parts: list[str]) -> None:
    """A page and then the parts it fetches as it loads, all at once as the browser does (htmx
    on load): until the last part is in."""
    from concurrent.futures import ThreadPoolExecutor

    import requests

    sessions = [requests.Session() for _ in parts]
    for other in sessions:
        other.cookies.update(session.cookies)

    def fetch(pair) -> int:
        client, url = pair
        reply = client.get(f"{base}{url}", timeout=TIMEOUT_S)
        _ = reply.content
        return reply.status_code

    times, statuses = [], set()
    with ThreadPoolExecutor(len(parts)) as pool:
        for attempt in range(REPEATS + 1):
            started = time.perf_counter()
            statuses.add(fetch((session, path)))
            statuses.update(pool.map(fetch, zip(sessions, parts, strict=True)))
            if attempt:  # the first is the warm-up
                times.append((time.perf_counter() - started) * 1000)
    _say_times(label, times, ",".join(map(str, sorted(statuses))))


def _time_read(session, base: str, label: str, path: str, first_byte: bool, watch) -> None:
    def once() -> tuple[float, int]:
        started = time.perf_counter()
        with session.get(f"{base}{path}", stream=first_byte, timeout=TIMEOUT_S) as reply:
            if first_byte:
                lines = reply.iter_lines()
                next(lines, None)  # the header line
                next(lines, None)  # the first row
            else:
                _ = reply.content
            elapsed = (time.perf_counter() - started) * 1000
        if first_byte:
            _until_idle(watch)
        return elapsed, reply.status_code

    import requests

    try:
        once()  # the warm-up: it reads the pages a cold cache lacks
    except requests.exceptions.Timeout:
        say(f"{label:48} {'>':>8}{TIMEOUT_S * 1000:.0f} ms: cut short, not timed")
        return
    times: list[float] = []
    while len(times) < (REPEATS if not times or times[0] < SLOW_S * 1000 else 3):
        try:
            ms, status = once()
        except requests.exceptions.Timeout:
            break
        times.append(ms)
    if not times:
        say(f"{label:48} {'>':>8}{TIMEOUT_S * 1000:.0f} ms: cut short, not timed")
        return
    _say_times(label, times, str(status))


def _until_idle(watch, limit_s: float = 10.0) -> None:
    """Wait until no query of the database runs but the watcher's own. An export left after its
    first row goes on in the server until its socket refuses more (a window of rows or so):
    the next read is timed against an idle server, as an engineer's next export would be."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        busy = watch.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND state = 'active' AND pid <> pg_backend_pid()"
        ).fetchone()[0]
        if not busy:
            return
        time.sleep(0.01)


def _say_times(label: str, times: list[float], status: str) -> None:
    """A read's line: p50, p95, max and count of its times (ms), and its status."""
    times = sorted(times)
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    say(
        f"{label:48} {statistics.median(times):8.0f} {p95:8.0f} {max(times):8.0f}"
        f" {len(times):2}  {status}"
    )


FULLEST = "as of Sunday night"


def _fullest(env: dict[str, str]) -> None:
    """The figures of today and this week (home, the station cards) cost more as the day and
    the week fill up, and the reads above run whenever the bench does. Timed here, in a child
    process, as of the end of the last whole week (Sunday 23:59:59 in the plant's zone): a
    whole day and a whole week of results, the most they ever read."""
    say(f"\ntoday's and this week's figures {FULLEST} (in-process; ms):")
    reply = subprocess.run(
        [sys.executable, "-c", "from bench.bench_year import fullest; fullest()"],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )  # fmt: skip
    if reply.returncode:
        print(reply.stderr, file=sys.stderr)
        say(f"  failed: {reply.stderr.strip().splitlines()[-1:]}")
    for line in reply.stdout.splitlines():
        say(line)


def fullest() -> None:
    """In the child process: the home's figures and the line view's station cards (counts and
    OEE of the day) as of the end of last week."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mes.settings")
    django.setup()
    from analytics import selectors
    from analytics.oee import today_oee
    from lines.models import Line

    today = datetime.now(PLANT).date()
    sunday = today - timedelta(days=today.weekday() + 1)
    now = datetime.combine(sunday, dtime(23, 59, 59), PLANT)
    line = Line.objects.get(code="yokohama")

    def cards() -> None:
        flow = selectors.wip_by_station(line, now=now)
        today_oee([status.station for step in flow for status in step.stations], now=now)

    for label, read in (
        ("home: both lines' day and week", lambda: selectors.line_summaries(now=now)),
        ("line view: the station cards", cards),
    ):
        read()
        times = []
        for _ in range(REPEATS):
            started = time.perf_counter()
            read()
            times.append((time.perf_counter() - started) * 1000)
        _say_times(f"  {label}", times, "")  # printed: the parent keeps it with the figures


# ---------------------------------------------------------------- ingestion


def _ingestion(envs: dict[str, dict[str, str]]) -> None:
    """bench_ingestion's end-to-end figure (results/s from the first POST until processed) on
    each database, measured in child processes that take turns, INGEST_TURNS each: this
    machine's speed drifts within minutes, and taking turns spreads the drift over both."""
    say(f"\ningestion, {INGEST_TURNS} turns on each database in alternation:")
    rates: dict[str, list[float]] = {label: [] for label in envs}
    for turn in range(INGEST_TURNS):
        for label, env in envs.items():
            reply = subprocess.run(
                [sys.executable, "-c", "from bench.bench_year import ingest; ingest()"],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
            )
            if reply.returncode:
                say(f"  {label}, turn {turn + 1} failed: {reply.stderr.strip().splitlines()[-1:]}")
                print(reply.stderr, file=sys.stderr)
                continue
            rates[label] += [float(rate) for rate in reply.stdout.split()]
    medians = {}
    for label, measured in rates.items():
        if not measured:
            continue
        medians[label] = statistics.median(measured)
        say(
            f"  {label:22} {INGEST_PER_REQUEST} results/request, {INGEST_RESULTS} results x"
            f" {len(measured)}: median {medians[label]:.0f}, best {max(measured):.0f} results/s"
            f" (runs {', '.join(f'{r:.0f}' for r in measured)})"
        )
    if len(medians) == 2:
        year, empty = medians.values()
        say(f"  year-sized / empty: {year / empty:.0%} of the empty database's rate (medians)")


def ingest() -> None:
    """In the child process: gunicorn and a Celery worker on this database, then the ingestion
    bench's scenario of INGEST_PER_REQUEST results per request, INGEST_ROUNDS times; prints
    the rates."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mes.settings")
    django.setup()
    from bench.bench_ingestion import (
        _cells,
        _check_stored,
        _now,
        _post_all,
        _result,
        _wait_processed,
        web_and_worker,
    )
    from demo.management.commands.seed_demo import Command as SeedDemo
    from lines.models import Station
    from stations.services import issue_station_token

    SeedDemo().seed_master_data()
    with web_and_worker("bench-year-ingest") as base:
        token = issue_station_token(Station.objects.get(code="PR-STK-1"), by="bench")
        rates = []
        # One round first, not counted: it warms the caches of the database and the workers,
        # the same for either database; a plant's line runs warm.
        for attempt in range(INGEST_ROUNDS + 1):
            prefix = f"y{attempt}-{uuid.uuid4().hex[:6]}-"
            serials = _cells(INGEST_RESULTS)
            results = [_result(s, f"{prefix}{n}") for n, s in enumerate(serials)]
            requests_ = [
                results[i : i + INGEST_PER_REQUEST]
                for i in range(0, INGEST_RESULTS, INGEST_PER_REQUEST)
            ]
            since, started = _now(), time.perf_counter()
            _post_all(base, token, requests_)
            _wait_processed(prefix, since)
            if attempt:
                rates.append(INGEST_RESULTS / (time.perf_counter() - started))
            _check_stored(prefix, INGEST_RESULTS, since)
        print(" ".join(f"{rate:.1f}" for rate in rates))


if __name__ == "__main__":
    main()
