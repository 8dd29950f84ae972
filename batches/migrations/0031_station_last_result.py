"""A station's last result read from the index alone (batches.ProcessRun.Meta)."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('batches', '0030_cell_indexes_not_needed'),
        ('lines', '0009_recipe_versions_of_experiment_arms'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='processrun',
            name='batches_run_station_time_idx',
        ),
        migrations.AddIndex(
            model_name='processrun',
            index=models.Index(fields=['station', 'finished_at', 'id'], name='batches_run_station_time_idx'),
        ),
    ]
