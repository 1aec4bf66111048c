"""Compliance officers record and manage incidents; supervisors may read them."""

from django.db import migrations

from contactcenter.roles import COMPLIANCE, SUPERVISOR, grant

READ = [
    "incidents.view_incident",
    "incidents.view_affectedrecording",
    "incidents.view_incidentnotification",
]
MANAGE = [*READ, "incidents.add_incident", "incidents.change_incident"]


def create_roles(apps, schema_editor):
    grant(apps, COMPLIANCE, MANAGE)
    grant(apps, SUPERVISOR, READ)


class Migration(migrations.Migration):
    dependencies = [
        ("incidents", "0001_initial"),
        ("contactcenter", "0002_roles"),
    ]

    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
