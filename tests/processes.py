"""Real processes for the fault tests: gunicorn, Celery workers (with the beat sweep) and, where
a test restarts the broker, a redis-server of its own; all pointed at the test database."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
from django.db import connection

from core.db_roles import runtime_role, url_as_role

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_database_url() -> str:
    """The URL of the database pytest-django created, for processes outside this one."""
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    # The embedded PostgreSQL is reached through a Unix socket directory given as ?host=.
    host = db["HOST"] or db.get("OPTIONS", {}).get("host") or "127.0.0.1"
    if host.startswith("/"):
        return f"postgresql://{auth}@/{db['NAME']}?host={host}"
    return f"postgresql://{auth}@{host}:{db['PORT'] or 5432}/{db['NAME']}"


def test_database_app_url() -> str:
    """The test database as the runtime role (core.db_roles), which its migrate granted."""
    return url_as_role(test_database_url(), *runtime_role())


def wait_for(check: Callable[[], bool], *, timeout: float, what: str, every: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def redis_reachable(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


class RedisServer:
    """A throwaway redis-server that keeps nothing on disk (a restart loses every message)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        subprocess.run(
            [shutil.which("redis-server"), "--daemonize", "yes", "--bind", "127.0.0.1",
             "--port", str(self.port), "--save", "", "--appendonly", "no"],
            check=True, capture_output=True,
        )  # fmt: skip
        wait_for(lambda: redis_reachable(self.url), timeout=10, what="redis-server")

    def stop(self) -> None:
        subprocess.run(
            [shutil.which("redis-cli"), "-p", str(self.port), "shutdown", "nosave"],
            capture_output=True,
        )
        wait_for(lambda: not redis_reachable(self.url), timeout=10, what="redis to stop")


class Stack:
    """gunicorn + Celery worker processes on one broker and the test database."""

    def __init__(self, broker_url: str, tmp: Path) -> None:
        self.broker_url = broker_url
        self.tmp = tmp
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "DATABASE_URL": test_database_url(),
            # As in production: gunicorn and the workers connect as the role that owns nothing.
            "DATABASE_ROLE": "app",
            "DATABASE_APP_URL": test_database_app_url(),
            "CELERY_BROKER_URL": broker_url,
            # Fast sweep, so a message the broker lost is found again within seconds.
            "INGEST_SWEEP_SECONDS": "1",
            "INGEST_PENDING_AFTER_SECONDS": "4",
            "INGEST_TASK_CHUNK": "50",
            "MES_MEDIA_ROOT": str(tmp / "media"),
            "LOG_LEVEL": "WARNING",
            # A queue of this test's own: another worker on a shared Redis cannot take its tasks.
            "CELERY_TASK_DEFAULT_QUEUE": f"ingest-test-{os.getpid()}-{self.port}",
            "PYTHONUNBUFFERED": "1",
            # The fault and stress tests send as one station far faster than equipment does.
            "STATION_API_BURST_RATE": "100000/s",
            "STATION_API_SUSTAINED_RATE": "1000000/min",
        }
        self.web: subprocess.Popen | None = None
        self.workers: list[subprocess.Popen] = []

    def _spawn(self, args: list[str], log: str) -> subprocess.Popen:
        out = open(self.tmp / log, "ab")  # noqa: SIM115 - lives as long as the process
        # Own session: a test can SIGKILL a whole process group, as a machine's OOM killer would.
        return subprocess.Popen(
            args, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

    def start_web(self) -> None:
        self.web = self._spawn(
            [str(BIN / "gunicorn"), "mes.wsgi:application", "--bind", f"127.0.0.1:{self.port}",
             "--workers", "2", "--threads", "4", "--worker-class", "gthread"],
            "gunicorn.log",
        )  # fmt: skip
        import urllib.request

        def up() -> bool:
            try:
                return (
                    urllib.request.urlopen(f"{self.base_url}/api/v1/health", timeout=1).status
                    == 200
                )
            except OSError:
                return False

        wait_for(up, timeout=90, what="gunicorn")

    def start_worker(self) -> subprocess.Popen:
        n = len(self.workers)
        worker = self._spawn(
            [str(BIN / "celery"), "-A", "mes", "worker", "-B", "--concurrency", "2",
             "--pool", "prefork", "--hostname", f"w{n}@%h", "--loglevel", "WARNING",
             "--without-gossip", "--without-mingle",
             "--schedule", str(self.tmp / f"beat-{n}")],
            f"worker-{n}.log",
        )  # fmt: skip
        self.workers.append(worker)
        # Ready when the pool's children are up (prefork forks them after connecting).
        wait_for(lambda: len(self.children(worker)) >= 2, timeout=30, what="celery worker")
        return worker

    @staticmethod
    def children(worker: subprocess.Popen) -> list[psutil.Process]:
        try:
            return psutil.Process(worker.pid).children()
        except psutil.NoSuchProcess:
            return []

    def kill_group(self, process: subprocess.Popen) -> None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def stop(self) -> None:
        """Stop every process of the stack, children included, and wait until they are gone:
        a pool child that outlived the test would keep a session on the test database."""
        groups = [p for p in [*self.workers, self.web] if p is not None]
        for process in groups:
            _signal_group(process, signal.SIGTERM)
        for process in groups:
            try:
                wait_for(lambda p=process: not _group_alive(p), timeout=15, what="shutdown")
            except AssertionError:
                _signal_group(process, signal.SIGKILL)
                wait_for(lambda p=process: not _group_alive(p), timeout=10, what="SIGKILL")

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in self.tmp.glob("*.log"))


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)  # the group outlives its leader while any member lives
    except ProcessLookupError:
        pass


def _group_alive(process: subprocess.Popen) -> bool:
    """Whether any process of the group is still running (the leader is reaped on the way)."""
    process.poll()
    for member in psutil.process_iter(["status"]):
        try:
            if os.getpgid(member.pid) == process.pid and member.status() != psutil.STATUS_ZOMBIE:
                return True
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return False


def shared_broker_url() -> str:
    """The Redis the tests share (a database of its own per run), or skip the test."""
    # CI and the development machine run Redis at 127.0.0.1:6379 (ARCHITECTURE.md).
    url = os.environ.get("CELERY_BROKER_URL") or "redis://127.0.0.1:6379/1"
    if not url.startswith("redis://") or not redis_reachable(url):
        pytest.skip(f"needs a running Redis at {url} (set CELERY_BROKER_URL)")
    return url
