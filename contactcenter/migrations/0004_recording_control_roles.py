"""Supervisors may control the recording of any call; operators control their own (in code)."""

from django.db import migrations

from contactcenter.roles import SUPERVISOR, grant


def create_roles(apps, schema_editor):
    grant(apps, SUPERVISOR, ["contactcenter.control_any_recording", "contactcenter.view_callevent"])


class Migration(migrations.Migration):
    dependencies = [
        ("contactcenter", "0003_call_recording_state_and_events"),
    ]

    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
