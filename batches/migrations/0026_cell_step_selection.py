import importlib

import django.db.models.deletion
from django.db import migrations, models

cell_steps = importlib.import_module("batches.migrations.0021_cell_steps")

# 0021's sum, now also copying from the first result what a quality selection filters on
# (quality.selection): its station, equipment and recipe version, and its cell's design. They
# follow the first result: a result dated before the first one, arriving later, brings its own.
UPSERT = """
INSERT INTO batches_cellstep AS cs
    (cell_id, batch_id, step, first_run_id, first_at, first_passed, passes, fails,
     station_id, equipment_ref, recipe_version_id, design_id)
SELECT DISTINCT ON (r.cell_id, st.station_kind)
       r.cell_id, c.batch_id, st.station_kind, r.id, r.finished_at, r.verdict = 'pass',
       count(*) FILTER (WHERE r.verdict = 'pass') OVER same,
       count(*) FILTER (WHERE r.verdict <> 'pass') OVER same,
       r.station_id, r.equipment_ref, r.recipe_version_id, b.design_id
FROM {runs} r
JOIN lines_routestep st ON st.id = r.step_id
JOIN batches_cell c ON c.id = r.cell_id
JOIN batches_batch b ON b.id = c.batch_id
WINDOW same AS (PARTITION BY r.cell_id, st.station_kind)
ORDER BY r.cell_id, st.station_kind, r.finished_at, r.id
ON CONFLICT (cell_id, step) DO UPDATE SET
    passes = cs.passes + EXCLUDED.passes,
    fails = cs.fails + EXCLUDED.fails,
    first_run_id = CASE WHEN {earlier} THEN EXCLUDED.first_run_id ELSE cs.first_run_id END,
    first_passed = CASE WHEN {earlier} THEN EXCLUDED.first_passed ELSE cs.first_passed END,
    station_id = CASE WHEN {earlier} THEN EXCLUDED.station_id ELSE cs.station_id END,
    equipment_ref = CASE WHEN {earlier} THEN EXCLUDED.equipment_ref ELSE cs.equipment_ref END,
    recipe_version_id = CASE WHEN {earlier} THEN EXCLUDED.recipe_version_id ELSE cs.recipe_version_id END,
    first_at = LEAST(cs.first_at, EXCLUDED.first_at)
""".replace(
    "{earlier}", "(EXCLUDED.first_at, EXCLUDED.first_run_id) < (cs.first_at, cs.first_run_id)"
)

# The rows so far, summed again from the results rather than updated in place: an UPDATE of
# every row would leave the table twice its size (dead rows) until a VACUUM FULL, and yield
# reads it whole. The rows' keys are checked at once: the table is altered next, which
# PostgreSQL refuses while deferred checks are pending.
RESUM = (
    "SET CONSTRAINTS ALL IMMEDIATE; TRUNCATE batches_cellstep; "
    + UPSERT.format(runs="batches_processrun")
)


def _replace(schema_editor, upsert):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT current_schema()")
        path = schema_editor.connection.ops.quote_name(cursor.fetchone()[0])
        cursor.execute(
            f"""
CREATE OR REPLACE FUNCTION batches_sum_cell_steps() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = {path}, pg_temp AS $$
BEGIN
    {upsert.format(runs="added")};
    RETURN NULL;
END $$;
"""
        )


def install(apps, schema_editor):
    _replace(schema_editor, UPSERT)
    schema_editor.execute(RESUM)


def remove(apps, schema_editor):
    _replace(schema_editor, cell_steps.UPSERT)


class Migration(migrations.Migration):

    dependencies = [
        ('batches', '0025_serials_in_any_case'),
        ('lines', '0009_recipe_versions_of_experiment_arms'),
    ]

    operations = [
        migrations.AddField(
            model_name='cellstep',
            name='station',
            field=models.ForeignKey(db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='lines.station'),
        ),
        migrations.AddField(
            model_name='cellstep',
            name='equipment_ref',
            field=models.CharField(blank=True, default='', max_length=60),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name='cellstep',
            name='recipe_version',
            field=models.ForeignKey(db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='lines.recipeversion'),
        ),
        migrations.AddField(
            model_name='cellstep',
            name='design',
            field=models.ForeignKey(db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='lines.celldesign'),
        ),
        migrations.RunPython(install, remove, elidable=False),
        migrations.AlterField(
            model_name='cellstep',
            name='station',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='lines.station'),
        ),
        migrations.AlterField(
            model_name='cellstep',
            name='recipe_version',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='lines.recipeversion'),
        ),
        migrations.AlterField(
            model_name='cellstep',
            name='design',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='lines.celldesign'),
        ),
        migrations.AddIndex(
            model_name='cellstep',
            index=models.Index(fields=['station', 'first_at'], name='batches_cellstep_station_idx'),
        ),
    ]
