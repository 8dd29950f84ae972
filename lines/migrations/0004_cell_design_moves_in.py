"""Cell designs move to the lines app, beside the recipes written for them: same table
(batches_celldesign), same rows. Batches, BOM lines and grading rule sets keep pointing at it."""

import django.db.models.deletion  # noqa: F401
from django.db import migrations, models


def content_type_follows(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    if not ContentType.objects.filter(app_label="lines", model="celldesign").exists():
        ContentType.objects.filter(app_label="batches", model="celldesign").update(app_label="lines")


def content_type_goes_back(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    ContentType.objects.filter(app_label="lines", model="celldesign").update(app_label="batches")


class Migration(migrations.Migration):
    dependencies = [
        ("lines", "0003_station_token_moves_out"),
        ("batches", "0009_holdrule_in_force"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='CellDesign',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('code', models.SlugField(max_length=40, unique=True)),
                        ('name', models.CharField(max_length=100)),
                        ('nominal_capacity_ah', models.FloatField()),
                        ('nominal_voltage_v', models.FloatField()),
                        ('layer_count', models.PositiveSmallIntegerField()),
                        ('target_mass_g', models.FloatField()),
                        ('length_mm', models.FloatField()),
                        ('width_mm', models.FloatField()),
                        ('thickness_mm', models.FloatField()),
                        ('voltage_min_v', models.FloatField(help_text='Lower end of the formation voltage window')),
                        ('voltage_max_v', models.FloatField(help_text='Upper end of the formation voltage window')),
                    ],
                    options={
                        'db_table': 'batches_celldesign',
                        'ordering': ['code'],
                    },
                ),
                migrations.AddConstraint(
                    model_name='celldesign',
                    constraint=models.CheckConstraint(condition=models.Q(('nominal_capacity_ah__gt', 0), ('nominal_voltage_v__gt', 0), ('layer_count__gt', 0), ('target_mass_g__gt', 0), ('length_mm__gt', 0), ('width_mm__gt', 0), ('thickness_mm__gt', 0)), name='batches_celldesign_figures_positive'),
                ),
                migrations.AddConstraint(
                    model_name='celldesign',
                    constraint=models.CheckConstraint(condition=models.Q(('voltage_min_v__lt', models.F('voltage_max_v'))), name='batches_celldesign_voltage_window_ordered'),
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(content_type_follows, content_type_goes_back),
    ]
