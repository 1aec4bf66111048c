"""A trigram index for the customers list's search by a part of the name (PostgreSQL only).

The admin searches ``name__icontains``, which PostgreSQL runs as ``UPPER(name) LIKE
UPPER('%…%')``: a GIN index of ``pg_trgm`` on ``UPPER(name)`` serves it, so finding 「山田」
among millions of customers reads the index, not the table. Other databases (SQLite, the
embedded default for small installs) scan, which is fine at their size.
"""

from django.db import migrations

INDEX = "customer_name_trgm_idx"


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    schema_editor.execute(
        f'CREATE INDEX IF NOT EXISTS {INDEX} ON "contactcenter_customer" '
        ' USING gin (UPPER("name"::text) gin_trgm_ops)'
    )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("contactcenter", "0005_customer_recording_opted_out")]

    operations = [migrations.RunPython(create, drop)]
