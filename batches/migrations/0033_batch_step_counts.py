import django.db.models.deletion
from django.db import migrations, models

# batches_batchstepcount (BatchStepCount) holds changes to each batch's counts per kind of step:
# its cells that passed there and those that failed there, a row per batch, step and statement,
# summed when read. Triggers on each statement that adds, changes or removes cell steps
# (batches_cellstep, itself written by the results' trigger) write them in the same transaction,
# as SECURITY DEFINER functions: the runtime role, which may only read the table
# (core/db_roles.py), cannot write it by any other way. Insert-only, so concurrent results never
# queue on a batch's row; batches_compact_batch_step_counts() (beat) folds the rows.

# A cell step counts as passed with any passing result, as failed with any failing one.
PASSED, FAILED = "(passes > 0)::int", "(fails > 0)::int"

DELTAS = """
INSERT INTO batches_batchstepcount (batch_id, step, passed, failed)
SELECT batch_id, step, sum(passed), sum(failed)
FROM ({rows}) deltas (batch_id, step, passed, failed)
GROUP BY batch_id, step HAVING (sum(passed), sum(failed)) <> (0, 0)
"""
ADDED = DELTAS.format(rows=f"SELECT batch_id, step, {PASSED}, {FAILED} FROM new_rows")
REMOVED = DELTAS.format(rows=f"SELECT batch_id, step, -{PASSED}, -{FAILED} FROM old_rows")
CHANGED = DELTAS.format(
    rows=f"SELECT batch_id, step, {PASSED}, {FAILED} FROM new_rows"
    f" UNION ALL SELECT batch_id, step, -{PASSED}, -{FAILED} FROM old_rows"
)

# The counts so far, for the migration.
BACKFILL = f"""
INSERT INTO batches_batchstepcount (batch_id, step, passed, failed)
SELECT batch_id, step, sum({PASSED}), sum({FAILED}) FROM batches_cellstep
GROUP BY batch_id, step HAVING (sum({PASSED}), sum({FAILED})) <> (0, 0)
"""

# Beat's compaction: each batch's rows of a step folded into one (none where they sum to
# nothing). Rows added meanwhile by other transactions are not seen and stay as they are; a row
# another compaction deleted first is skipped, so two at once fold each row once.
COMPACT = """
WITH spread AS (
    SELECT batch_id, step FROM batches_batchstepcount GROUP BY batch_id, step
    HAVING count(*) > 1 OR (sum(passed), sum(failed)) = (0, 0)
),
gone AS (
    DELETE FROM batches_batchstepcount s USING spread
    WHERE s.batch_id = spread.batch_id AND s.step = spread.step
    RETURNING s.*
),
folded AS (
    INSERT INTO batches_batchstepcount (batch_id, step, passed, failed)
    SELECT batch_id, step, sum(passed), sum(failed) FROM gone
    GROUP BY batch_id, step HAVING (sum(passed), sum(failed)) <> (0, 0)
    RETURNING 1
)
SELECT (SELECT count(*) FROM gone) - (SELECT count(*) FROM folded) INTO removed
"""
COMPACT_FUNCTION = "batches_compact_batch_step_counts()"

TRIGGERS = {  # name: (event, transition tables, body)
    "batches_count_added_steps": ("INSERT", "NEW TABLE AS new_rows", ADDED),
    "batches_count_changed_steps": (
        "UPDATE",
        "OLD TABLE AS old_rows NEW TABLE AS new_rows",
        CHANGED,
    ),
    "batches_count_removed_steps": ("DELETE", "OLD TABLE AS old_rows", REMOVED),
}


def install(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT current_schema()")
        path = schema_editor.connection.ops.quote_name(cursor.fetchone()[0])
        sql = []
        for name, (event, referencing, body) in TRIGGERS.items():
            sql.append(
                f"""
CREATE FUNCTION {name}() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = {path}, pg_temp AS $$
BEGIN
    {body};
    RETURN NULL;
END $$;
REVOKE ALL ON FUNCTION {name}() FROM PUBLIC;
CREATE TRIGGER {name} AFTER {event} ON batches_cellstep
REFERENCING {referencing} FOR EACH STATEMENT EXECUTE FUNCTION {name}();
"""
            )
        sql.append(
            f"""
-- Cell steps emptied at once (summed again from the results, as migration 0026 does): their
-- counts go with them, and the sums come back with the rows. DELETE, not TRUNCATE: a TRUNCATE
-- of both tables in one statement (a test database's flush) is still using this one.
CREATE FUNCTION batches_count_no_steps() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = {path}, pg_temp AS $$
BEGIN
    DELETE FROM batches_batchstepcount;
    RETURN NULL;
END $$;
REVOKE ALL ON FUNCTION batches_count_no_steps() FROM PUBLIC;
CREATE TRIGGER batches_count_no_steps AFTER TRUNCATE ON batches_cellstep
FOR EACH STATEMENT EXECUTE FUNCTION batches_count_no_steps();

CREATE FUNCTION {COMPACT_FUNCTION} RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = {path}, pg_temp AS $$
DECLARE
    removed integer;
BEGIN
    {COMPACT};
    RETURN removed;
END $$;
REVOKE ALL ON FUNCTION {COMPACT_FUNCTION} FROM PUBLIC;
"""
        )
        cursor.execute("".join(sql))
        # The triggers' locks keep every writer out until this commits: nothing is missed.
        cursor.execute(BACKFILL)


def remove(apps, schema_editor):
    names = [*TRIGGERS, "batches_count_no_steps"]
    schema_editor.execute(
        "".join(
            f"DROP TRIGGER IF EXISTS {name} ON batches_cellstep; "
            f"DROP FUNCTION IF EXISTS {name}(); "
            for name in names
        )
        + f"DROP FUNCTION IF EXISTS {COMPACT_FUNCTION};"
    )


class Migration(migrations.Migration):

    dependencies = [
        ('batches', '0032_measurement_station_and_time'),
    ]

    operations = [
        migrations.CreateModel(
            name='BatchStepCount',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('step', models.CharField(choices=[('stacking', 'Stacking'), ('pressing', 'Pressing'), ('formation', 'Formation'), ('aging', 'Aging / OCV'), ('grading', 'Grading')], max_length=20)),
                ('passed', models.IntegerField()),
                ('failed', models.IntegerField()),
                ('batch', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='batches.batch')),
            ],
            options={
                'indexes': [models.Index(fields=['batch', 'step'], include=('passed', 'failed'), name='batches_batchstepcount_idx')],
            },
        ),
        migrations.RunPython(install, remove, elidable=False),
    ]
