"""The stations app takes over the station tokens (lines_stationtoken) and the inbox
(batches_inboxentry): existing tables, kept with their names and rows."""

import django.db.models.deletion
from django.db import migrations, models


def content_types_follow(apps, schema_editor):
    """Permissions given on the models keep pointing at them: their content types change app."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    for old_app, model in [('lines', 'stationtoken'), ('batches', 'inboxentry')]:
        if not ContentType.objects.filter(app_label="stations", model=model).exists():
            ContentType.objects.filter(app_label=old_app, model=model).update(app_label="stations")


def content_types_go_back(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    for old_app, model in [('lines', 'stationtoken'), ('batches', 'inboxentry')]:
        ContentType.objects.filter(app_label="stations", model=model).update(app_label=old_app)


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("batches", "0008_inbox_and_grading_move_out"),
        ("lines", "0003_station_token_moves_out"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='StationToken',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('key_hash', models.CharField(max_length=64, unique=True)),
                        ('prefix', models.CharField(help_text='First characters, to tell tokens apart', max_length=8)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('revoked_at', models.DateTimeField(blank=True, null=True)),
                        ('station', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='tokens', to='lines.station')),
                    ],
                    options={
                        'db_table': 'lines_stationtoken',
                        'ordering': ['-created_at'],
                    },
                ),
                migrations.CreateModel(
                    name='InboxEntry',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('event_id', models.CharField(max_length=100)),
                        ('kind', models.CharField(choices=[('result', 'Station result'), ('cycler_file', 'Cycler file')], default='result', max_length=20)),
                        ('cell_serial', models.CharField(max_length=50)),
                        ('occurred_at', models.DateTimeField(blank=True, null=True)),
                        ('content_hash', models.CharField(help_text='sha256 of the canonical content', max_length=64)),
                        ('payload', models.JSONField(help_text='The message as validated (canonical JSON)')),
                        ('status', models.CharField(choices=[('pending', 'Pending'), ('processed', 'Processed'), ('rejected', 'Rejected')], default='pending', max_length=10)),
                        ('reason_code', models.CharField(blank=True, max_length=40)),
                        ('reason', models.TextField(blank=True)),
                        ('outcome', models.CharField(blank=True, choices=[('pass', 'Pass'), ('fail', 'Fail')], max_length=10)),
                        ('violations', models.JSONField(blank=True, default=list)),
                        ('attempts', models.PositiveIntegerField(default=0)),
                        ('received_at', models.DateTimeField()),
                        ('enqueued_at', models.DateTimeField(help_text='Last time a task for this row was enqueued')),
                        ('processed_at', models.DateTimeField(blank=True, null=True)),
                        ('run', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='batches.processrun')),
                        ('station', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='inbox', to='lines.station')),
                    ],
                    options={
                        'verbose_name_plural': 'inbox entries',
                        'db_table': 'batches_inboxentry',
                        'ordering': ['received_at', 'id'],
                        'indexes': [models.Index(condition=models.Q(('status', 'pending')), fields=['enqueued_at'], name='batches_inbox_pending_idx'), models.Index(condition=models.Q(('reason_code', 'waiting'), ('status', 'pending')), fields=['cell_serial'], name='batches_inbox_waiting_cell_idx'), models.Index(condition=models.Q(('reason_code', ''), ('status', 'pending')), fields=['id'], name='batches_inbox_fresh_idx'), models.Index(condition=models.Q(('status', 'rejected')), fields=['-processed_at', '-id'], name='batches_inbox_rejected_idx')],
                        'constraints': [models.UniqueConstraint(fields=('station', 'event_id'), name='batches_inboxentry_event_once'), models.CheckConstraint(condition=models.Q(models.Q(('processed_at__isnull', True), ('status', 'pending')), models.Q(('processed_at__isnull', False), ('status__in', ['processed', 'rejected'])), _connector='OR'), name='batches_inboxentry_processed_has_time')],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(content_types_follow, content_types_go_back),
    ]
