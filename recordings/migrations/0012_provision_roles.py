"""Supervisors and compliance officers hand recordings to third parties, through the
provision ledger, and read that ledger."""

from django.db import migrations

from contactcenter.roles import COMPLIANCE, SUPERVISOR, grant


def create_roles(apps, schema_editor):
    for role in (SUPERVISOR, COMPLIANCE):
        grant(
            apps,
            role,
            ["recordings.provide_to_third_party", "recordings.view_provisionrecord"],
        )


class Migration(migrations.Migration):
    dependencies = [("recordings", "0011_provision_ledger_and_seal")]

    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
