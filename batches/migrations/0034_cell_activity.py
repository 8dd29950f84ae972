import django.db.models.deletion
from django.db import migrations, models

# A statement adding results moves each of their cells' latest times forward in
# batches_cellactivity (CellActivity): its latest result, latest failed result and latest result
# at its route's first step, and its line (its stations'); the runtime role may only read the
# table (core/db_roles.py). Rows in cell order, as the cell steps' trigger takes them: two
# statements never lock the same cells in opposite orders.
UPSERT = """
INSERT INTO batches_cellactivity AS a
    (cell_id, line_id, last_run_at, last_failed_at, last_started_at)
SELECT r.cell_id, min(st.line_id), max(r.finished_at),
       max(r.finished_at) FILTER (WHERE r.verdict = 'fail'),
       max(r.finished_at) FILTER (WHERE rs.position = 1)
FROM {runs} r
JOIN lines_station st ON st.id = r.station_id
JOIN lines_routestep rs ON rs.id = r.step_id
GROUP BY r.cell_id
ORDER BY r.cell_id
ON CONFLICT (cell_id) DO UPDATE SET
    last_run_at = GREATEST(a.last_run_at, EXCLUDED.last_run_at),
    last_failed_at = GREATEST(a.last_failed_at, EXCLUDED.last_failed_at),
    last_started_at = GREATEST(a.last_started_at, EXCLUDED.last_started_at)
"""


def install_statement_trigger(schema_editor, name: str, table: str, body: str) -> None:
    """Function and trigger `name`: `body` runs after each statement inserting into `table`,
    with the rows it inserted as `added`, as the function's owner (SECURITY DEFINER: the runtime
    role cannot write what it writes by any other way). Migration 0035 makes its own with it."""
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT current_schema()")
        path = schema_editor.connection.ops.quote_name(cursor.fetchone()[0])
        cursor.execute(
            f"""
CREATE FUNCTION {name}() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = {path}, pg_temp AS $$
BEGIN
    {body};
    RETURN NULL;
END $$;
REVOKE ALL ON FUNCTION {name}() FROM PUBLIC;
CREATE TRIGGER {name} AFTER INSERT ON {table}
REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION {name}();
"""
        )


def remove_statement_trigger(schema_editor, name: str, table: str) -> None:
    schema_editor.execute(
        f"DROP TRIGGER IF EXISTS {name} ON {table}; DROP FUNCTION IF EXISTS {name}();"
    )


def install(apps, schema_editor):
    install_statement_trigger(
        schema_editor,
        "batches_note_cell_activity",
        "batches_processrun",
        UPSERT.format(runs="added"),
    )
    # The results so far. The trigger's lock keeps every writer out until this commits:
    # nothing is missed.
    schema_editor.execute(UPSERT.format(runs="batches_processrun"))


def remove(apps, schema_editor):
    remove_statement_trigger(schema_editor, "batches_note_cell_activity", "batches_processrun")


class Migration(migrations.Migration):

    dependencies = [
        ('batches', '0033_batch_step_counts'),
        ('lines', '0009_recipe_versions_of_experiment_arms'),
    ]

    operations = [
        migrations.CreateModel(
            name='CellActivity',
            fields=[
                ('cell', models.OneToOneField(db_constraint=False, on_delete=django.db.models.deletion.DO_NOTHING, primary_key=True, related_name='+', serialize=False, to='batches.cell')),
                ('last_run_at', models.DateTimeField()),
                ('last_failed_at', models.DateTimeField(null=True)),
                ('last_started_at', models.DateTimeField(null=True)),
                ('line', models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='lines.line')),
            ],
            options={
                'indexes': [models.Index(fields=['last_run_at'], include=('line', 'last_failed_at', 'last_started_at'), name='batches_cellactivity_idx')],
            },
        ),
        migrations.RunPython(install, remove, elidable=False),
    ]
