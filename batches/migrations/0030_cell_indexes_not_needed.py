"""Two indexes of the cell table no read uses, written on every step a cell moves: the foreign
key's own index on next_step (batches_cell_wip_idx leads with it) and the pattern-operator copy
of the serial's unique index that Django adds to a unique character column (for LIKE 'x%'; the
search matches serials through the upper-case and trigram indexes instead)."""

import django.db.models.deletion
from django.db import migrations, models

LIKE_INDEX = "batches_cell_serial_aa41611e_like"


class Migration(migrations.Migration):
    dependencies = [
        ("batches", "0029_lot_consumer_counts"),
        ("lines", "0009_recipe_versions_of_experiment_arms"),
    ]

    operations = [
        migrations.AlterField(
            model_name="cell",
            name="next_step",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="lines.routestep",
            ),
        ),
        migrations.RunSQL(
            f"DROP INDEX IF EXISTS {LIKE_INDEX}",
            f"CREATE INDEX {LIKE_INDEX} ON batches_cell (serial varchar_pattern_ops)",
        ),
    ]
