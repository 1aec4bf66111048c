"""Supervisors and compliance officers work the queue of customer requests."""

from django.db import migrations

from contactcenter.roles import COMPLIANCE, SUPERVISOR, grant

QUEUE = [
    "portal.view_customerrequest",
    "portal.change_customerrequest",
    "portal.view_listeninglink",
]


def create_roles(apps, schema_editor):
    grant(apps, SUPERVISOR, QUEUE)
    grant(apps, COMPLIANCE, QUEUE)


class Migration(migrations.Migration):
    dependencies = [("portal", "0001_initial")]

    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
