"""Supervisors see staff's authenticator devices in the admin, to reset another's."""

from django.db import migrations

from contactcenter.roles import SUPERVISOR, grant


def create_roles(apps, schema_editor):
    grant(apps, SUPERVISOR, ["otp_totp.view_totpdevice"])


class Migration(migrations.Migration):
    dependencies = [
        ("contactcenter", "0004_recording_control_roles"),
        ("otp_totp", "0003_add_timestamps"),
    ]

    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
