"""Supervisors play recordings for an open purpose; operators review those open for training."""

from django.db import migrations

from contactcenter.roles import OPERATOR, SUPERVISOR, grant


def create_roles(apps, schema_editor):
    grant(apps, SUPERVISOR, ["recordings.play_recording", "recordings.review_for_training"])
    grant(apps, OPERATOR, ["recordings.review_for_training"])


class Migration(migrations.Migration):
    dependencies = [("recordings", "0004_playback")]

    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
