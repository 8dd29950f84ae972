# The results per station and time carry their recipe version and verdict: today's counts on
# the line view and OEE's windows read them from the index alone (batches.ProcessRun's Meta).
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('batches', '0035_hold_batches'),
        ('lines', '0009_recipe_versions_of_experiment_arms'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='processrun',
            name='batches_run_station_time_idx',
        ),
        migrations.AddIndex(
            model_name='processrun',
            index=models.Index(fields=['station', 'finished_at', 'id'], include=('recipe_version', 'verdict'), name='batches_run_station_time_idx'),
        ),
    ]
