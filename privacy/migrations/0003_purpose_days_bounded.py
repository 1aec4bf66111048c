"""Usable days of a purpose are bounded: 1 to 3,650 (ten years), checked by the database.

Rows written before the bound with more days are brought down to 3,650 first: a recording is
then usable for less time than announced, never for longer, and every date computed from the
days fits in Python and the database again.
"""

import django.core.validators
from django.db import migrations, models

MAX_DAYS = 3650


def bring_within_bounds(apps, schema_editor):
    for model in ("Purpose", "NoticePurpose"):
        rows = apps.get_model("privacy", model).objects
        rows.filter(retention_days__gt=MAX_DAYS).update(retention_days=MAX_DAYS)


class Migration(migrations.Migration):
    dependencies = [
        ("privacy", "0002_roles"),
    ]

    operations = [
        migrations.RunPython(bring_within_bounds, migrations.RunPython.noop),
        migrations.RemoveConstraint(
            model_name="purpose",
            name="purpose_retention_positive",
        ),
        migrations.AlterField(
            model_name="noticepurpose",
            name="retention_days",
            field=models.PositiveIntegerField(
                blank=True,
                null=True,
                validators=[
                    django.core.validators.MinValueValidator(
                        1, message="Enter a number of days from 1 to 3,650 (ten years)."
                    ),
                    django.core.validators.MaxValueValidator(
                        3650, message="Enter a number of days from 1 to 3,650 (ten years)."
                    ),
                ],
                verbose_name="usable for (days)",
            ),
        ),
        migrations.AlterField(
            model_name="purpose",
            name="retention_days",
            field=models.PositiveIntegerField(
                help_text="How many days from the call a recording may be used for this purpose (1 to 3,650).",
                validators=[
                    django.core.validators.MinValueValidator(
                        1, message="Enter a number of days from 1 to 3,650 (ten years)."
                    ),
                    django.core.validators.MaxValueValidator(
                        3650, message="Enter a number of days from 1 to 3,650 (ten years)."
                    ),
                ],
                verbose_name="usable for (days)",
            ),
        ),
        migrations.AddConstraint(
            model_name="noticepurpose",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("retention_days__isnull", True),
                    models.Q(("retention_days__gte", 1), ("retention_days__lte", 3650)),
                    _connector="OR",
                ),
                name="notice_purpose_retention_days_bounded",
            ),
        ),
        migrations.AddConstraint(
            model_name="purpose",
            constraint=models.CheckConstraint(
                condition=models.Q(("retention_days__gte", 1), ("retention_days__lte", 3650)),
                name="purpose_retention_days_bounded",
            ),
        ),
    ]
