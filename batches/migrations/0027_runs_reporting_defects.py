import django.db.models.fields.json
import django.db.models.lookups
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('batches', '0026_cell_step_selection'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='processrun',
            index=models.Index(condition=models.Q(django.db.models.lookups.GreaterThan(models.Func(models.F('defects'), function='cardinality', output_field=models.IntegerField()), 0)), fields=['station', 'finished_at'], include=('step', 'defects'), name='batches_run_defects_idx'),
        ),
        migrations.AddIndex(
            model_name='processrun',
            index=models.Index(condition=models.Q(django.db.models.fields.json.DataContains(models.F('violations'), models.Value([{}], output_field=models.JSONField()))), fields=['station', 'finished_at'], include=('step', 'violations'), name='batches_run_violations_idx'),
        ),
    ]
