"""The access event keeps the recording's id without a foreign key to ``recordings``.

The audit trail is a lower layer than the recording pipeline, which writes to it; a foreign
key from the trail to ``recordings.Recording`` was the one dependency pointing upward. The
column, its values and its index stay as they are (so every event's hash is unchanged); only
the foreign-key constraint is dropped, and the model field becomes a plain integer.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0004_alter_accessevent_action"),
        ("recordings", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.AlterField(
                    model_name="accessevent",
                    name="recording",
                    field=models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="recordings.recording",
                        verbose_name="recording",
                    ),
                ),
            ],
            state_operations=[
                migrations.RemoveIndex(model_name="accessevent", name="access_event_recording_idx"),
                migrations.RemoveField(model_name="accessevent", name="recording"),
                migrations.AddField(
                    model_name="accessevent",
                    name="recording_id",
                    field=models.BigIntegerField(blank=True, null=True, verbose_name="recording"),
                ),
                migrations.AddIndex(
                    model_name="accessevent",
                    index=models.Index(
                        fields=["recording_id", "occurred_at"], name="access_event_recording_idx"
                    ),
                ),
            ],
        ),
    ]
