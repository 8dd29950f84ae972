import importlib

import django.db.models.deletion
from django.db import migrations, models

cell_activity = importlib.import_module("batches.migrations.0034_cell_activity")

# A statement adding cells to holds notes, in batches_holdbatch (HoldBatch), each batch those
# cells belong to, by a trigger as 0034's; the runtime role may only read the table
# (core/db_roles.py). Cells never leave a hold (the runtime role may only add them): nothing is
# ever removed.
ADD = """
INSERT INTO batches_holdbatch (hold_id, batch_id)
SELECT DISTINCT hc.hold_id, c.batch_id
FROM {hold_cells} hc JOIN batches_cell c ON c.id = hc.cell_id
ORDER BY 1, 2
ON CONFLICT (batch_id, hold_id) DO NOTHING
"""


def install(apps, schema_editor):
    cell_activity.install_statement_trigger(
        schema_editor,
        "batches_note_hold_batches",
        "batches_hold_cells",
        ADD.format(hold_cells="added"),
    )
    # The holds' cells so far. The trigger's lock keeps every writer out until this commits:
    # nothing is missed.
    schema_editor.execute(ADD.format(hold_cells="batches_hold_cells"))


def remove(apps, schema_editor):
    cell_activity.remove_statement_trigger(
        schema_editor, "batches_note_hold_batches", "batches_hold_cells"
    )


class Migration(migrations.Migration):

    dependencies = [
        ('batches', '0034_cell_activity'),
    ]

    operations = [
        migrations.CreateModel(
            name='HoldBatch',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('batch', models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='batches.batch')),
                ('hold', models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='batches.hold')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('batch', 'hold'), name='batches_holdbatch_once')],
            },
        ),
        migrations.RunPython(install, remove, elidable=False),
    ]
