"""Station tokens move to the stations app (stations/0001): same table, same rows."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("lines", "0002_released_recipe_versions_immutable"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="StationToken")],
            database_operations=[],
        ),
    ]
