"""Supervisors and compliance officers keep the art. 32 settings and the cross-border register."""

from django.db import migrations

from contactcenter.roles import COMPLIANCE, SUPERVISOR, grant

PERMISSIONS = [
    "privacy.view_organisation",
    "privacy.add_organisation",
    "privacy.change_organisation",
    "privacy.view_crossborderrecipient",
    "privacy.add_crossborderrecipient",
    "privacy.change_crossborderrecipient",
    "privacy.delete_crossborderrecipient",
    "privacy.view_crossbordercheck",
    "privacy.add_crossbordercheck",
]


def create_roles(apps, schema_editor):
    for group_name in (SUPERVISOR, COMPLIANCE):
        grant(apps, group_name, PERMISSIONS)


class Migration(migrations.Migration):
    dependencies = [
        ("privacy", "0004_organisation_cross_border"),
        ("contactcenter", "0002_roles"),
    ]

    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
