"""One keypress answer per call and party in the consent ledger.

Twilio retries ``/consent`` while the first request is still running, and both requests used
to write the caller's answer: the ledger holds the same answer twice on some calls. From now
on the database refuses a second keypress answer of a party on a call (a partial unique
constraint on ``call`` and ``party_role``), and the webhook keeps the first.

The ledger is append-only, so the duplicates already written are neither deleted nor edited:
they stay as what happened. Adding the constraint over them would fail, so every record that
exists when this migration runs is marked ``before_one_answer_per_call`` (the column is
added with ``True`` for the existing rows, then defaults to ``False``) and the constraint
covers only records without the mark. No row is rewritten; a record written from now on
never carries the mark. A call with two answers from before keeps both, and readers take
the newest as they always did.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("consent", "0002_roles"),
        ("contactcenter", "0005_customer_recording_opted_out"),
    ]

    operations = [
        # Existing rows get True: they were written before the rule.
        migrations.AddField(
            model_name="consentrecord",
            name="before_one_answer_per_call",
            field=models.BooleanField(
                default=True,
                editable=False,
                help_text=(
                    "Set on every record written before the ledger kept one keypress answer "
                    "per call and party; such a call may show a retried answer twice."
                ),
                verbose_name="written before one answer per call",
            ),
            preserve_default=False,
        ),
        # New rows get False: the rule applies to them.
        migrations.AlterField(
            model_name="consentrecord",
            name="before_one_answer_per_call",
            field=models.BooleanField(
                default=False,
                editable=False,
                help_text=(
                    "Set on every record written before the ledger kept one keypress answer "
                    "per call and party; such a call may show a retried answer twice."
                ),
                verbose_name="written before one answer per call",
            ),
        ),
        migrations.AddConstraint(
            model_name="consentrecord",
            constraint=models.UniqueConstraint(
                condition=models.Q(
                    ("before_one_answer_per_call", False),
                    ("call__isnull", False),
                    ("method", "ivr_keypress"),
                ),
                fields=("call", "party_role"),
                name="consent_one_keypress_answer_per_call",
                violation_error_message="This call already has the party's keypress answer.",
            ),
        ),
    ]
