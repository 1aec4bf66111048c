"""Supervisors and compliance see recordings, retry fetches and place and release legal holds."""

from django.db import migrations

from contactcenter.roles import COMPLIANCE, SUPERVISOR, grant

SEE = [
    "recordings.view_recording",
    "recordings.view_recordingpurpose",
    "recordings.view_legalhold",
    "recordings.view_tombstone",
    "recordings.view_outboxmessage",
    "recordings.manage_legal_hold",
]


def create_roles(apps, schema_editor):
    grant(apps, SUPERVISOR, [*SEE, "recordings.change_recording"])
    grant(apps, COMPLIANCE, SEE)


class Migration(migrations.Migration):
    dependencies = [("recordings", "0001_initial")]

    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
