"""The inbox table's own storage settings (migration batches 0007), now on each of its monthly
partitions (core/partitions.py): a partitioned table has no storage of its own."""

from __future__ import annotations

from django.db import connection


def test_every_inbox_partition_is_vacuumed_after_ten_thousand_dead_rows_not_a_fifth_of_it(db):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, c.reloptions FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'batches_inboxentry'::regclass"
        )
        partitions = dict(cursor.fetchall())
    assert "batches_inboxentry_default" in partitions and len(partitions) > 1
    for options in partitions.values():
        assert set(options) >= {
            "autovacuum_vacuum_threshold=10000",
            "autovacuum_vacuum_scale_factor=0.01",
        }
