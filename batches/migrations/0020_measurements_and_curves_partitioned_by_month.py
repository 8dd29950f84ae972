"""Measurements and curves partitioned by month (core/partitions.py) on recorded_at, their run's
recorded_at copied into each row: the rows, ids, indexes and constraints carried over; the primary
key becomes (id, recorded_at) and the one-per-run constraints take recorded_at too."""

from functools import partial

import django.db.models.functions.datetime
from django.db import migrations, models

from core import partitions

TABLES = ("batches_measurement", "batches_curve")

# The rows there were get their run's time, as the writers set it from now on.
BACKFILL = """
UPDATE {table} AS row SET recorded_at = run.recorded_at
FROM batches_processrun AS run WHERE run.id = row.run_id
"""


def backfill(apps, schema_editor):
    for table in TABLES:
        schema_editor.execute(BACKFILL.format(table=table))


def _run(function, apps, schema_editor):
    for table in TABLES:
        function(schema_editor, table)


def _constraint(model):
    return models.UniqueConstraint(
        fields=("run", "name", "recorded_at"), name=f"batches_{model}_name_per_run"
    )


class Migration(migrations.Migration):
    dependencies = [
        ("batches", "0019_consumers_of_a_lot"),
        # Its statement trigger on measurements is carried over to the partitioned table.
        ("analytics", "0003_batch_figures"),
        ("core", "0001_partition_maintenance"),
    ]

    operations = [
        migrations.AddField(
            model_name="curve",
            name="recorded_at",
            field=models.DateTimeField(db_default=django.db.models.functions.datetime.Now()),
        ),
        migrations.AddField(
            model_name="measurement",
            name="recorded_at",
            field=models.DateTimeField(db_default=django.db.models.functions.datetime.Now()),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
        # The constraints change in the database with the partitioning below.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveConstraint(model_name=model, name=f"batches_{model}_name_per_run")
                for model in ("curve", "measurement")
            ]
            + [
                migrations.AddConstraint(model_name=model, constraint=_constraint(model))
                for model in ("curve", "measurement")
            ],
        ),
        migrations.RunPython(
            partial(_run, partitions.partition_table), partial(_run, partitions.unpartition_table)
        ),
    ]
