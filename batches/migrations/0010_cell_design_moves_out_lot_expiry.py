"""Cell designs now live in the lines app (lines/0004); a lot may carry its expiry."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("batches", "0009_holdrule_in_force"),
        ("lines", "0004_cell_design_moves_in"),
        ("quality", "0002_grading_design_in_lines"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='batch',
                    name='design',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='batches', to='lines.celldesign'),
                ),
                migrations.AlterField(
                    model_name='designmaterial',
                    name='design',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='materials', to='lines.celldesign'),
                ),
                migrations.DeleteModel(
                    name='CellDesign',
                ),
            ],
            database_operations=[],
        ),
        migrations.AddField(
            model_name='materiallot',
            name='expires_at',
            field=models.DateTimeField(blank=True, help_text='After this the lot may not be consumed (shelf life)', null=True),
        ),
    ]
