"""Supervisors and compliance officers read the consent ledger and record withdrawals and
operators' acknowledgements (the ledger itself is never edited)."""

from django.db import migrations

from contactcenter.roles import COMPLIANCE, SUPERVISOR, grant

LEDGER_PERMISSIONS = ["consent.view_consentrecord", "consent.add_consentrecord"]


def create_roles(apps, schema_editor):
    for group_name in (SUPERVISOR, COMPLIANCE):
        grant(apps, group_name, LEDGER_PERMISSIONS)


class Migration(migrations.Migration):
    dependencies = [
        ("consent", "0001_initial"),
        ("contactcenter", "0002_roles"),
    ]

    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
