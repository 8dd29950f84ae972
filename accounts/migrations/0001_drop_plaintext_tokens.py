"""rest_framework.authtoken kept engineers' tokens in plain text (authtoken_token). It is no longer
installed (personal tokens are knox's, stored as digests), so its table would only keep working
secrets lying about: dropped, and its migrations forgotten, as though it had never been installed.
The tokens it held stop working; engineers issue new ones."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies: list[tuple[str, str]] = []

    operations = [
        migrations.RunSQL(
            "DROP TABLE IF EXISTS authtoken_token; "
            "DELETE FROM django_migrations WHERE app = 'authtoken';",
            reverse_sql=migrations.RunSQL.noop,
        ),
    ]
