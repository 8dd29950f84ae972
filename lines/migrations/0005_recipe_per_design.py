"""A recipe is written for a cell design, or without one as the line's default."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("lines", "0004_cell_design_moves_in"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name='recipe',
            options={'ordering': ['line', 'station_kind', 'design_id']},
        ),
        migrations.RemoveConstraint(
            model_name='recipe',
            name='lines_recipe_one_per_station_kind',
        ),
        migrations.AddField(
            model_name='recipe',
            name='design',
            field=models.ForeignKey(blank=True, help_text="The design it is written for; empty: the line's default", null=True, on_delete=django.db.models.deletion.PROTECT, related_name='recipes', to='lines.celldesign'),
        ),
        migrations.AddConstraint(
            model_name='recipe',
            constraint=models.UniqueConstraint(condition=models.Q(('design__isnull', True)), fields=('line', 'station_kind'), name='lines_recipe_one_default_per_station_kind'),
        ),
        migrations.AddConstraint(
            model_name='recipe',
            constraint=models.UniqueConstraint(condition=models.Q(('design__isnull', False)), fields=('line', 'station_kind', 'design'), name='lines_recipe_one_per_station_kind_and_design'),
        ),
    ]
