"""Grading rule sets point at the cell design where it now lives (lines); no change in the database."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("quality", "0001_initial"),
        ("lines", "0004_cell_design_moves_in"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='gradingruleset',
                    name='design',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='grading_rule_sets', to='lines.celldesign'),
                ),
            ],
            database_operations=[],
        ),
    ]
