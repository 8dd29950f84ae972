import django.db.models.deletion
from django.db import migrations, models

# A statement adding cells to holds notes, in batches_holdbatch (HoldBatch), each batch those
# cells belong to. SECURITY DEFINER, so the runtime role, which may only read the table
# (core/db_roles.py), cannot write it by any other way. Cells never leave a hold (the runtime
# role may only add them): nothing is ever removed.
ADD = """
INSERT INTO batches_holdbatch (hold_id, batch_id)
SELECT DISTINCT hc.hold_id, c.batch_id
FROM {hold_cells} hc JOIN batches_cell c ON c.id = hc.cell_id
ORDER BY 1, 2
ON CONFLICT (batch_id, hold_id) DO NOTHING
"""


def install(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT current_schema()")
        path = schema_editor.connection.ops.quote_name(cursor.fetchone()[0])
        cursor.execute(
            f"""
CREATE FUNCTION batches_note_hold_batches() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = {path}, pg_temp AS $$
BEGIN
    {ADD.format(hold_cells="added")};
    RETURN NULL;
END $$;
REVOKE ALL ON FUNCTION batches_note_hold_batches() FROM PUBLIC;
CREATE TRIGGER batches_note_hold_batches AFTER INSERT ON batches_hold_cells
REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION batches_note_hold_batches();
"""
        )
        # The holds' cells so far. The trigger's lock keeps every writer out until this
        # commits: nothing is missed.
        cursor.execute(ADD.format(hold_cells="batches_hold_cells"))


def remove(apps, schema_editor):
    schema_editor.execute(
        "DROP TRIGGER IF EXISTS batches_note_hold_batches ON batches_hold_cells;"
        " DROP FUNCTION IF EXISTS batches_note_hold_batches();"
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
