"""Supervisors and compliance see the runs of the reconciliation with Twilio."""

from django.db import migrations

from contactcenter.roles import COMPLIANCE, SUPERVISOR, grant


def create_roles(apps, schema_editor):
    for role in (SUPERVISOR, COMPLIANCE):
        grant(apps, role, ["recordings.view_reconciliationrun"])


class Migration(migrations.Migration):
    dependencies = [("recordings", "0007_reconciliation_run")]

    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
