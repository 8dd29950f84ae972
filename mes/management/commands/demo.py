"""`make demo`: migrate, seed, then run the web server, a Celery worker, beat, the MQTT bridge
(with an embedded broker when MQTT_URL is unset) and the line simulators side by side until
Ctrl-C, which stops every one of them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from django.conf import settings
from django.core.management import call_command, get_commands
from django.core.management.base import BaseCommand

HOST, PORT = "127.0.0.1", 8000


class Command(BaseCommand):
    help = "Set up and run the whole demo: web (gunicorn), Celery worker and beat, line simulators."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--port", type=int, default=PORT)
        parser.add_argument("--no-simulator", action="store_true", help="Do not drive the lines")

    def handle(self, *args, port: int, no_simulator: bool, **options) -> None:
        # Migrate and seed as the tables' owner (this process); everything started below
        # connects as the runtime role migrate has just granted (core/db_roles.py), as in
        # production. Its URL names the same server, the embedded one included.
        call_command("migrate", interactive=False, verbosity=0)
        self.stdout.write("Seeding both lines (idempotent)...")
        call_command("seed_demo")
        env = {
            **os.environ,
            "DATABASE_ROLE": "app",
            "DATABASE_APP_URL": settings.DATABASE_APP_URL,
            "PYTHONUNBUFFERED": "1",
        }
        python = sys.executable
        bin_dir = Path(python).parent
        (settings.DATA_DIR / "beat").mkdir(parents=True, exist_ok=True)
        commands = {
            "web": [
                str(bin_dir / "gunicorn"),
                "mes.wsgi",
                "--bind",
                f"{HOST}:{port}",
                "--workers",
                "2",
                "--threads",
                "4",
                "--access-logfile",
                "-",
            ],
            "worker": [
                python,
                "-m",
                "celery",
                "-A",
                "mes",
                "worker",
                "--loglevel",
                "INFO",
                "--concurrency",
                "2",
                "--hostname",
                "demo@%h",
            ],
            "beat": [
                python,
                "-m",
                "celery",
                "-A",
                "mes",
                "beat",
                "--loglevel",
                "INFO",
                "--schedule",
                str(settings.DATA_DIR / "beat" / "schedule"),
            ],
        }
        commands.update(_mqtt_commands(python, env))
        processes: dict[str, subprocess.Popen] = {}
        # Ctrl-C and a plain kill both stop everything (a background shell job ignores SIGINT).
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, _interrupt)
        try:
            for name, command in commands.items():
                # Each child leads its own process group, so stopping it stops its workers too.
                processes[name] = subprocess.Popen(command, env=env, start_new_session=True)
            _wait_for_http(f"http://{HOST}:{port}/api/v1/health", processes["web"])
            if not no_simulator and "simulate_line" in get_commands():
                for line in ("proto", "yokohama"):
                    processes[f"simulator-{line}"] = subprocess.Popen(
                        [
                            python,
                            "manage.py",
                            "simulate_line",
                            line,
                            "--cells",
                            "100000",
                            "--rate",
                            "2",
                            "--base-url",
                            f"http://{HOST}:{port}",
                        ],
                        env=env,
                        start_new_session=True,
                    )
            if not no_simulator and "simulate_dry_room" in get_commands():
                processes["dry-rooms"] = subprocess.Popen(
                    [
                        python,
                        "manage.py",
                        "simulate_dry_room",
                        "--base-url",
                        f"http://{HOST}:{port}",
                    ],
                    env=env,
                    start_new_session=True,
                )
            self.stdout.write(
                self.style.SUCCESS(
                    f"\nThe MES is running on http://{HOST}:{port}/ — sign in as lena / pilot-line-demo "
                    "(see README for the other personas). Ctrl-C stops everything.\n"
                )
            )
            while all(p.poll() is None for p in processes.values()):
                time.sleep(0.5)
            dead = [name for name, p in processes.items() if p.poll() is not None]
            self.stderr.write(f"{', '.join(dead)} stopped; shutting the demo down.")
        except KeyboardInterrupt:
            self.stdout.write("\nStopping...")
        finally:
            _stop(processes.values())


def _mqtt_commands(python: str, env: dict[str, str]) -> dict[str, list[str]]:
    """The MQTT bridge, and without MQTT_URL an embedded broker (amqtt, MQTT 3.1.1) on a free
    loopback port, as the embedded PostgreSQL stands in for a server. `env` (every process's)
    gets its URL, so the simulators publish some stations' results through it."""
    commands = {}
    if not settings.MQTT_URL:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env.update(MQTT_URL=f"mqtt://127.0.0.1:{port}", MQTT_PROTOCOL="3.1.1")
        commands["mqtt-broker"] = [python, "manage.py", "mqtt_embedded_broker", "--port", str(port)]
    # It connects (and reconnects) by itself once the broker listens.
    commands["mqtt-bridge"] = [python, "manage.py", "mqtt_bridge"]
    return commands


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _wait_for_http(url: str, process: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("The web server did not start.")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"{url} did not answer within {timeout:.0f} s.")


def _stop(processes) -> None:
    """SIGTERM to each leader (a warm shutdown: workers finish their task), then SIGKILL to
    whatever is left of its process group."""
    processes = list(processes)
    for p in processes:
        if p.poll() is None:
            p.terminate()
    deadline = time.monotonic() + 20
    for p in processes:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        _signal_group(p, signal.SIGKILL)
        p.wait()


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass
