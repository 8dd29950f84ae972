"""`make demo`: migrate, seed, then run the web server, a Celery worker, beat, the MQTT bridge
(with an embedded broker when MQTT_URL is unset) and the line simulators side by side until
Ctrl-C, which stops every one of them."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from django.conf import settings
from django.core.management import call_command, get_commands
from django.core.management.base import BaseCommand

HOST, PORT = "127.0.0.1", 8000
# Share of a simulated reading that is bad: at 2 results a second per line, a few holds an hour.
DEMO_UPSET_RATE = 0.001
BANNER_AGAIN_AFTER_S = 20


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
            **_served_as_deployed(),
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
                            # A few upsets an hour: enough holds to show, never a jammed line.
                            "--upset-rate",
                            str(DEMO_UPSET_RATE),
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
            banner = self.style.SUCCESS(
                f"\nThe MES is running on http://{HOST}:{port}/ — sign in as lena / pilot-line-demo "
                "(see README for the other personas). Enter shows this again; Ctrl-C stops "
                "everything.\n"
            )
            self.stdout.write(banner)
            _repeat_on_enter(lambda: self.stdout.write(banner))
            # The workers' and simulators' start-up output scrolls it away: once more after it.
            repeat_at = time.monotonic() + BANNER_AGAIN_AFTER_S
            while all(p.poll() is None for p in processes.values()):
                time.sleep(0.5)
                if repeat_at and time.monotonic() >= repeat_at:
                    self.stdout.write(banner)
                    repeat_at = 0
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


def _served_as_deployed() -> dict[str, str]:
    """The demo's processes run without DEBUG, as a plant would: the product's own error pages,
    never Django's debug pages (a mistyped serial shows "Not found", not the URL list). Plain
    HTTP on loopback; a secret key of its own kept under .data/; static files collected for
    WhiteNoise. A setting the person running it gave (DJANGO_DEBUG=1, say) wins."""
    key_file = settings.DATA_DIR / "secret_key"
    if not key_file.exists():
        key_file.parent.mkdir(parents=True, exist_ok=True)
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    call_command("collectstatic", interactive=False, verbosity=0)
    served = {
        "DJANGO_DEBUG": "0",
        "DJANGO_HTTPS": "0",
        "DJANGO_SECRET_KEY": key_file.read_text().strip(),
    }
    return {name: value for name, value in served.items() if name not in os.environ}


def _repeat_on_enter(show) -> None:
    """Show the banner again each time Enter is pressed in the demo's terminal."""
    if not sys.stdin or not sys.stdin.isatty():
        return

    def listen() -> None:
        for _ in sys.stdin:
            show()

    threading.Thread(target=listen, daemon=True, name="banner-on-enter").start()


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
