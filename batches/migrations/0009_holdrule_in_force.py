"""A hold rule's version is in force or retired (not 'active'); its codes are the registry's
(quality.rules), not a choice list of the model."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("batches", "0008_inbox_and_grading_move_out"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='holdrule',
            name='batches_holdrule_one_active',
        ),
        migrations.RenameField(
            model_name='holdrule',
            old_name='active',
            new_name='in_force',
        ),
        migrations.AlterField(
            model_name='holdrule',
            name='code',
            field=models.CharField(max_length=40),
        ),
        migrations.AddConstraint(
            model_name='holdrule',
            constraint=models.UniqueConstraint(condition=models.Q(('in_force', True)), fields=('code',), name='batches_holdrule_one_in_force'),
        ),
    ]
