"""The quality app takes over grading (batches_gradingruleset, batches_gradecriterion,
batches_cellgrade): existing tables, kept with their names and rows."""

import django.db.models.deletion
from django.db import migrations, models


def content_types_follow(apps, schema_editor):
    """Permissions given on the models keep pointing at them: their content types change app."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    for old_app, model in [('batches', 'gradingruleset'), ('batches', 'gradecriterion'), ('batches', 'cellgrade')]:
        if not ContentType.objects.filter(app_label="quality", model=model).exists():
            ContentType.objects.filter(app_label=old_app, model=model).update(app_label="quality")


def content_types_go_back(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    for old_app, model in [('batches', 'gradingruleset'), ('batches', 'gradecriterion'), ('batches', 'cellgrade')]:
        ContentType.objects.filter(app_label="quality", model=model).update(app_label=old_app)


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("batches", "0008_inbox_and_grading_move_out"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='GradingRuleSet',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('version', models.PositiveIntegerField()),
                        ('status', models.CharField(choices=[('draft', 'Draft'), ('released', 'Released'), ('superseded', 'Superseded')], default='draft', max_length=20)),
                        ('note', models.TextField(blank=True)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('released_at', models.DateTimeField(blank=True, null=True)),
                        ('design', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='grading_rule_sets', to='batches.celldesign')),
                    ],
                    options={
                        'db_table': 'batches_gradingruleset',
                        'ordering': ['design', '-version'],
                    },
                ),
                migrations.CreateModel(
                    name='GradeCriterion',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('grade', models.CharField(max_length=10)),
                        ('rank', models.PositiveSmallIntegerField(help_text='1 is the best grade; tried in rank order')),
                        ('parameter', models.SlugField(max_length=60)),
                        ('min', models.FloatField(blank=True, null=True)),
                        ('max', models.FloatField(blank=True, null=True)),
                        ('rule_set', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='criteria', to='quality.gradingruleset')),
                    ],
                    options={
                        'db_table': 'batches_gradecriterion',
                        'ordering': ['rule_set', 'rank', 'parameter'],
                    },
                ),
                migrations.CreateModel(
                    name='CellGrade',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('grade', models.CharField(max_length=10)),
                        ('reasons', models.JSONField(blank=True, default=list, help_text='Why each better grade was missed')),
                        ('graded_at', models.DateTimeField(auto_now_add=True)),
                        ('graded_by', models.CharField(max_length=150)),
                        ('cell', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='gradings', to='batches.cell')),
                        ('rule_set', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='gradings', to='quality.gradingruleset')),
                    ],
                    options={
                        'db_table': 'batches_cellgrade',
                        'ordering': ['cell', '-graded_at', '-id'],
                    },
                ),
                migrations.AddConstraint(
                    model_name='gradingruleset',
                    constraint=models.UniqueConstraint(fields=('design', 'version'), name='batches_gradingruleset_number_per_design'),
                ),
                migrations.AddConstraint(
                    model_name='gradingruleset',
                    constraint=models.UniqueConstraint(condition=models.Q(('status', 'released')), fields=('design',), name='batches_gradingruleset_one_released'),
                ),
                migrations.AddConstraint(
                    model_name='gradecriterion',
                    constraint=models.UniqueConstraint(fields=('rule_set', 'grade', 'parameter'), name='batches_gradecriterion_once_per_grade'),
                ),
                migrations.AddConstraint(
                    model_name='gradecriterion',
                    constraint=models.CheckConstraint(condition=models.Q(('min__isnull', True), ('max__isnull', True), ('min__lte', models.F('max')), _connector='OR'), name='batches_gradecriterion_min_le_max'),
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(content_types_follow, content_types_go_back),
    ]
