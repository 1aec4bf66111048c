"""An index for the customers list's search by the beginning of the name (PostgreSQL only).

The admin searches ``name__istartswith``, which PostgreSQL runs as ``UPPER(name::text) LIKE
UPPER('山田%')``: a B-tree of ``UPPER(name::text)`` with ``text_pattern_ops`` serves that
prefix, in any script (a trigram index would not: Japanese family names are often two
characters, shorter than a trigram). Other databases (SQLite, the embedded default for small
installs) scan, which is fine at their size.
"""

from django.db import migrations

INDEX = "customer_name_prefix_idx"


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        f'CREATE INDEX IF NOT EXISTS {INDEX} ON "contactcenter_customer" '
        '(UPPER("name"::text) text_pattern_ops)'
    )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("contactcenter", "0005_customer_recording_opted_out")]

    operations = [migrations.RunPython(create, drop)]
