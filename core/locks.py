"""Named locks held until the transaction ends (PostgreSQL advisory locks), for what has no row to
lock: a press cycle is a name on the runs pressed in it, not a row of its own."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection


def lock_names(names: Iterable[str]) -> None:
    """Wait for and take the transaction-level locks of `names`, in sorted order, so that two
    transactions taking several of them queue up instead of deadlocking. A transaction may take
    a lock it holds already."""
    ordered = sorted(set(names))
    if not ordered:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(name, 0)) FROM unnest(%s::text[]) "
            "WITH ORDINALITY AS names(name, position) ORDER BY position",
            [ordered],
        )
