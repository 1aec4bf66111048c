import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("recordings", "0003_fetch_lease_and_withdrawal"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="AccessEvent",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "seq",
                    models.PositiveBigIntegerField(
                        help_text="Position in the trail: 1, 2, 3, … with no gaps.",
                        unique=True,
                        verbose_name="sequence number",
                    ),
                ),
                (
                    "occurred_at",
                    models.DateTimeField(
                        db_index=True,
                        default=django.utils.timezone.now,
                        verbose_name="occurred at",
                    ),
                ),
                (
                    "actor_label",
                    models.CharField(
                        help_text="The user name, or the process that acted when no person did.",
                        max_length=150,
                        verbose_name="by",
                    ),
                ),
                (
                    "action",
                    models.CharField(
                        choices=[
                            ("playback", "Playback"),
                            ("download", "Download"),
                            ("export", "Audit export"),
                            ("hold_placed", "Legal hold placed"),
                            ("hold_released", "Legal hold released"),
                            ("purge", "Purge"),
                            ("key_rotation", "Key rotation"),
                            ("refused", "Access refused"),
                            ("notice_published", "Notice published"),
                            ("training_marked", "Marked as training material"),
                            ("training_review", "Training review"),
                        ],
                        max_length=32,
                        verbose_name="action",
                    ),
                ),
                (
                    "recording_sid",
                    models.CharField(blank=True, max_length=34, verbose_name="recording SID"),
                ),
                (
                    "purpose",
                    models.CharField(blank=True, max_length=64, verbose_name="purpose code"),
                ),
                ("detail", models.JSONField(default=dict, verbose_name="detail")),
                ("ip", models.GenericIPAddressField(null=True, verbose_name="IP address")),
                (
                    "user_agent",
                    models.CharField(blank=True, max_length=300, verbose_name="browser"),
                ),
                (
                    "previous_hash",
                    models.CharField(max_length=64, verbose_name="previous event's hash"),
                ),
                ("hash", models.CharField(max_length=64, unique=True, verbose_name="hash")),
                (
                    "actor",
                    models.ForeignKey(
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                        verbose_name="user",
                    ),
                ),
                (
                    "recording",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="access_events",
                        to="recordings.recording",
                        verbose_name="recording",
                    ),
                ),
            ],
            options={
                "verbose_name": "access event",
                "verbose_name_plural": "access events",
                "ordering": ["seq"],
                "indexes": [
                    models.Index(
                        fields=["recording", "occurred_at"], name="access_event_recording_idx"
                    ),
                    models.Index(fields=["action", "occurred_at"], name="access_event_action_idx"),
                ],
            },
        ),
    ]
