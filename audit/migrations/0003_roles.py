"""Supervisors and compliance officers read the access audit trail; operators do not."""

from django.db import migrations

from contactcenter.roles import COMPLIANCE, SUPERVISOR, grant


def create_roles(apps, schema_editor):
    for group_name in (SUPERVISOR, COMPLIANCE):
        grant(apps, group_name, ["audit.view_accessevent"])


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0002_append_only_guard"),
        ("contactcenter", "0002_roles"),
    ]

    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
