from django.db import migrations

# The inbox is a queue: every row is written twice (stored, then processed or rejected), so each
# result leaves a dead row version, and an entry in the partial indexes of pending rows that
# only VACUUM removes. Bitmap scans of those indexes (the pending counts of the line view and of
# every page's header) read every such entry again: with 100,000 of them the header's query took
# 5.3 ms and the line's station counts 33 ms, against 0.6 and 13 ms after a VACUUM. PostgreSQL's
# default waits for a fifth of the table to be dead (a million rows in a five-million-row inbox);
# here it waits for 10,000 rows and a hundredth of the table.
SETTINGS = "autovacuum_vacuum_threshold = 10000, autovacuum_vacuum_scale_factor = 0.01"


class Migration(migrations.Migration):
    dependencies = [("batches", "0006_inbox_rejected_index")]

    operations = [
        migrations.RunSQL(
            f"ALTER TABLE batches_inboxentry SET ({SETTINGS})",
            "ALTER TABLE batches_inboxentry RESET "
            "(autovacuum_vacuum_threshold, autovacuum_vacuum_scale_factor)",
        ),
    ]
