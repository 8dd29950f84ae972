"""The functions that make the monthly partitions and archive the inbox (core/partitions.py)."""

from django.db import migrations

from core import partitions


def install(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT current_schema()")
        cursor.execute(partitions.functions_sql(cursor.fetchone()[0]))


def remove(apps, schema_editor):
    schema_editor.execute(partitions.DROP_FUNCTIONS_SQL)


class Migration(migrations.Migration):
    dependencies = []
    operations = [migrations.RunPython(install, remove, elidable=False)]
