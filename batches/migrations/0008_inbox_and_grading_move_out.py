"""The station inbox moves to the stations app, grading to the quality app: same tables, same
rows; only Django's idea of which app owns them changes (stations/0001, quality/0001)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("batches", "0007_inbox_autovacuum"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(
                    model_name='cellgrade',
                    name='cell',
                ),
                migrations.RemoveField(
                    model_name='cellgrade',
                    name='rule_set',
                ),
                migrations.RemoveField(
                    model_name='gradecriterion',
                    name='rule_set',
                ),
                migrations.RemoveField(
                    model_name='gradingruleset',
                    name='design',
                ),
                migrations.RemoveField(
                    model_name='inboxentry',
                    name='run',
                ),
                migrations.RemoveField(
                    model_name='inboxentry',
                    name='station',
                ),
                migrations.DeleteModel(
                    name='CellGrade',
                ),
                migrations.DeleteModel(
                    name='GradeCriterion',
                ),
                migrations.DeleteModel(
                    name='GradingRuleSet',
                ),
                migrations.DeleteModel(
                    name='InboxEntry',
                ),
            ],
            database_operations=[],
        ),
    ]
