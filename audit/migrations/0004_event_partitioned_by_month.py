"""Audit events partitioned by the month they occurred in (core/partitions.py): the rows, ids,
indexes and the append-only trigger carried over; the primary key becomes (id, occurred_at)."""

from functools import partial

from django.db import migrations

from core import partitions


def _run(function, apps, schema_editor):
    function(schema_editor, "audit_event")


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0003_event_ids_of_200_characters"),
        ("core", "0001_partition_maintenance"),
    ]
    operations = [
        migrations.RunPython(
            partial(_run, partitions.partition_table), partial(_run, partitions.unpartition_table)
        ),
    ]
