"""Measurements carry their run's cell, station and finished_at (batches.Measurement), and one
parameter's points are indexed in time order: the rows there were get their run's, as the writers
set them from now on."""

import django.db.models.deletion
from django.db import migrations, models

BACKFILL = """
UPDATE batches_measurement AS row
SET cell_id = run.cell_id, station_id = run.station_id, finished_at = run.finished_at
FROM batches_processrun AS run WHERE run.id = row.run_id
"""


class Migration(migrations.Migration):

    dependencies = [
        ('batches', '0031_station_last_result'),
        ('lines', '0009_recipe_versions_of_experiment_arms'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='measurement',
            name='batches_measurement_name_idx',
        ),
        migrations.AddField(
            model_name='measurement',
            name='cell',
            field=models.ForeignKey(db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='batches.cell'),
        ),
        migrations.AddField(
            model_name='measurement',
            name='finished_at',
            field=models.DateTimeField(null=True),
        ),
        migrations.AddField(
            model_name='measurement',
            name='station',
            field=models.ForeignKey(db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='lines.station'),
        ),
        migrations.RunSQL(BACKFILL, migrations.RunSQL.noop),
        migrations.AlterField(
            model_name='measurement',
            name='cell',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='batches.cell'),
        ),
        migrations.AlterField(
            model_name='measurement',
            name='finished_at',
            field=models.DateTimeField(),
        ),
        migrations.AlterField(
            model_name='measurement',
            name='station',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='lines.station'),
        ),
        migrations.AddIndex(
            model_name='measurement',
            index=models.Index(fields=['name', 'finished_at', 'run'], include=('station', 'value', 'recorded_at'), name='batches_measurement_time_idx'),
        ),
    ]
