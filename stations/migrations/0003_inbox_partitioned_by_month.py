"""The inbox partitioned by month on received_at (core/partitions.py), its idempotency key moved
to stations_inboxkey (filled from the rows there are), and the archive of processed rows."""

from functools import partial

import django.db.models.deletion
from django.db import migrations, models

from core import partitions

KEYS = """
INSERT INTO stations_inboxkey (station_id, event_id, content_hash, received_at)
SELECT station_id, event_id, content_hash, received_at FROM batches_inboxentry
"""


def _run(function, apps, schema_editor):
    for table in (partitions.INBOX, partitions.INBOX_ARCHIVE):
        function(schema_editor, table)


class Migration(migrations.Migration):

    dependencies = [
        ('batches', '0020_measurements_and_curves_partitioned_by_month'),
        ('lines', '0009_recipe_versions_of_experiment_arms'),
        ('stations', '0002_event_ids_of_200_characters'),
        ('core', '0001_partition_maintenance'),
    ]

    operations = [
        migrations.CreateModel(
            name='ArchivedInboxEntry',
            fields=[
                ('id', models.BigIntegerField(primary_key=True, serialize=False)),
                ('event_id', models.CharField(max_length=200)),
                ('kind', models.CharField(choices=[('result', 'Station result'), ('cycler_file', 'Cycler file')], max_length=20)),
                ('cell_serial', models.CharField(max_length=50)),
                ('occurred_at', models.DateTimeField(blank=True, null=True)),
                ('content_hash', models.CharField(max_length=64)),
                ('payload', models.JSONField()),
                ('status', models.CharField(choices=[('pending', 'Pending'), ('processed', 'Processed'), ('rejected', 'Rejected')], max_length=10)),
                ('reason_code', models.CharField(blank=True, max_length=40)),
                ('reason', models.TextField(blank=True)),
                ('outcome', models.CharField(blank=True, choices=[('pass', 'Pass'), ('fail', 'Fail')], max_length=10)),
                ('violations', models.JSONField(blank=True, default=list)),
                ('attempts', models.PositiveIntegerField(default=0)),
                ('received_at', models.DateTimeField()),
                ('enqueued_at', models.DateTimeField()),
                ('processed_at', models.DateTimeField(blank=True, null=True)),
            ],
            options={
                'verbose_name_plural': 'archived inbox entries',
                'db_table': 'stations_inboxarchive',
                'ordering': ['received_at', 'id'],
            },
        ),
        migrations.CreateModel(
            name='InboxKey',
            fields=[
                ('pk', models.CompositePrimaryKey('station', 'event_id', blank=True, editable=False, primary_key=True, serialize=False)),
                ('station', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='lines.station')),
                ('event_id', models.CharField(max_length=200)),
                ('content_hash', models.CharField(max_length=64)),
                ('received_at', models.DateTimeField()),
            ],
            options={
                'db_table': 'stations_inboxkey',
            },
        ),
        migrations.RemoveConstraint(
            model_name='inboxentry',
            name='batches_inboxentry_event_once',
        ),
        migrations.AddIndex(
            model_name='inboxentry',
            index=models.Index(fields=['station', 'event_id'], name='batches_inbox_event_idx'),
        ),
        migrations.AddField(
            model_name='archivedinboxentry',
            name='run',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='batches.processrun'),
        ),
        migrations.AddField(
            model_name='archivedinboxentry',
            name='station',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='lines.station'),
        ),
        migrations.AddIndex(
            model_name='archivedinboxentry',
            index=models.Index(fields=['station', 'event_id'], name='stations_archive_event_idx'),
        ),
        migrations.RunSQL(KEYS, migrations.RunSQL.noop),
        migrations.RunPython(
            partial(_run, partitions.partition_table), partial(_run, partitions.unpartition_table)
        ),
    ]
