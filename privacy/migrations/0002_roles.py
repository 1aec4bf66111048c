"""Supervisors and compliance officers write, publish and compare notices."""

from django.db import migrations

from contactcenter.roles import COMPLIANCE, SUPERVISOR, grant

NOTICE_PERMISSIONS = [
    "privacy.view_purpose",
    "privacy.add_purpose",
    "privacy.change_purpose",
    "privacy.view_notice",
    "privacy.add_notice",
    "privacy.change_notice",
    "privacy.delete_notice",
    "privacy.view_noticepurpose",
    "privacy.add_noticepurpose",
    "privacy.change_noticepurpose",
    "privacy.delete_noticepurpose",
    "privacy.publish_notice",
]


def create_roles(apps, schema_editor):
    for group_name in (SUPERVISOR, COMPLIANCE):
        grant(apps, group_name, NOTICE_PERMISSIONS)


class Migration(migrations.Migration):
    dependencies = [
        ("privacy", "0001_initial"),
        ("contactcenter", "0002_roles"),
    ]

    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
