"""The inbox table's own storage settings (migration batches 0007)."""

from __future__ import annotations

from django.db import connection


def test_the_inbox_is_vacuumed_after_ten_thousand_dead_rows_not_a_fifth_of_it(db):
    with connection.cursor() as cursor:
        cursor.execute("SELECT reloptions FROM pg_class WHERE relname = 'batches_inboxentry'")
        (options,) = cursor.fetchone()
    assert set(options) >= {
        "autovacuum_vacuum_threshold=10000",
        "autovacuum_vacuum_scale_factor=0.01",
    }
