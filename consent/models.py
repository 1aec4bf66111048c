"""The consent ledger: who agreed to be recorded, how, when, and under which notice.

Append-only. The application never changes or deletes a ``ConsentRecord``: a correction,
a refusal after a grant, or a withdrawal is a new record, so the ledger is the full history
that an auditor or a court can read.
"""

import hashlib

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise ValidationError(_("Consent records cannot be changed; add a new record instead."))

    def delete(self):
        raise ValidationError(_("Consent records cannot be deleted; add a new record instead."))

    def keypress_answer(self, *, call, party_role):
        """The party's keypress answer on ``call`` that the ledger keeps one of, or None
        (``consent_one_keypress_answer_per_call``)."""
        return self.filter(
            call=call,
            party_role=party_role,
            method=ConsentRecord.Method.IVR_KEYPRESS,
            before_one_answer_per_call=False,
        ).first()


class ConsentRecord(models.Model):
    class PartyRole(models.TextChoices):
        CALLER = "caller", _("Caller")
        CALLEE = "callee", _("Callee")
        OPERATOR = "operator", _("Operator")

    class Decision(models.TextChoices):
        GRANTED = "granted", _("Granted")
        REFUSED = "refused", _("Refused")
        WITHDRAWN = "withdrawn", _("Withdrawn")

    class Method(models.TextChoices):
        IVR_KEYPRESS = "ivr_keypress", _("Keypress after the recorded announcement")
        VERBAL = "verbal", _("Verbal confirmation noted by the operator")
        CONTRACT = "contract", _("Contract or written acknowledgement")
        WEB_FORM = "web_form", _("Web form")
        STAFF_ENTRY = "staff_entry", _("Request received by staff (phone, letter, counter)")

    customer = models.ForeignKey(
        "contactcenter.Customer",
        verbose_name=_("customer"),
        on_delete=models.PROTECT,
        related_name="consent_records",
        null=True,
        blank=True,
    )
    operator = models.ForeignKey(
        "contactcenter.Operator",
        verbose_name=_("operator"),
        on_delete=models.PROTECT,
        related_name="consent_records",
        null=True,
        blank=True,
    )
    call = models.ForeignKey(
        "contactcenter.Call",
        verbose_name=_("call"),
        on_delete=models.PROTECT,
        related_name="consent_records",
        null=True,
        blank=True,
        help_text=_("Empty for standing consent and for withdrawals that cover every call."),
    )
    party_role = models.CharField(_("party"), max_length=16, choices=PartyRole.choices)
    decision = models.CharField(_("decision"), max_length=16, choices=Decision.choices)
    method = models.CharField(_("method"), max_length=16, choices=Method.choices)
    notice = models.ForeignKey(
        "privacy.Notice",
        verbose_name=_("notice"),
        on_delete=models.PROTECT,
        related_name="consent_records",
        null=True,
        blank=True,
    )
    digits = models.CharField(_("digits pressed"), max_length=16, blank=True)
    announcement_text = models.TextField(_("announcement text"), blank=True)
    announcement_sha256 = models.CharField(_("announcement SHA-256"), max_length=64, blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("recorded by"),
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
    )
    recorded_by_system = models.CharField(
        _("recorded by system"),
        max_length=64,
        blank=True,
        help_text=_("The component that recorded it when no person did, e.g. twilio-ivr."),
    )
    source_request = models.JSONField(
        _("source request"),
        default=dict,
        blank=True,
        help_text=_("The Twilio request the record came from (CallSid, idempotency token, …)."),
    )
    note = models.TextField(_("note"), blank=True)
    recorded_at = models.DateTimeField(_("recorded at"), default=timezone.now, db_index=True)
    before_one_answer_per_call = models.BooleanField(
        _("written before one answer per call"),
        default=False,
        editable=False,
        help_text=_(
            "Set on every record written before the ledger kept one keypress answer per call "
            "and party; such a call may show a retried answer twice."
        ),
    )

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        verbose_name = _("consent record")
        verbose_name_plural = _("consent records")
        ordering = ["-recorded_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(customer__isnull=False, operator__isnull=True)
                    | models.Q(customer__isnull=True, operator__isnull=False)
                ),
                name="consent_has_exactly_one_subject",
            ),
            models.CheckConstraint(
                condition=(models.Q(operator__isnull=True) | models.Q(party_role="operator")),
                name="consent_operator_subject_is_operator_party",
            ),
            # One keypress answer per call and party: Twilio retries /consent while the first
            # request still runs, and both must not land in a ledger that cannot be cleaned.
            models.UniqueConstraint(
                fields=["call", "party_role"],
                condition=models.Q(
                    method="ivr_keypress",
                    call__isnull=False,
                    before_one_answer_per_call=False,
                ),
                name="consent_one_keypress_answer_per_call",
                violation_error_message=_("This call already has the party's keypress answer."),
            ),
        ]
        indexes = [
            models.Index(fields=["customer", "-recorded_at"], name="consent_customer_idx"),
            models.Index(fields=["operator", "-recorded_at"], name="consent_operator_idx"),
            models.Index(fields=["call", "-recorded_at"], name="consent_call_idx"),
            # The ledger's filters, newest first: a rare answer is found without a scan.
            models.Index(fields=["decision", "-recorded_at"], name="consent_decision_idx"),
            models.Index(fields=["method", "-recorded_at"], name="consent_method_idx"),
            models.Index(fields=["party_role", "-recorded_at"], name="consent_party_idx"),
        ]

    def __str__(self):
        return f"{self.subject} — {self.get_decision_display()} ({self.get_method_display()})"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ValidationError(_("Consent records cannot be changed; add a new record instead."))
        if self.announcement_text and not self.announcement_sha256:
            self.announcement_sha256 = hashlib.sha256(self.announcement_text.encode()).hexdigest()
        # Always an INSERT: a record given an existing id must not overwrite that row.
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValidationError(_("Consent records cannot be deleted; add a new record instead."))

    def summary_line(self):
        """One line of a text for people (a customer's copy, a third party's export): when,
        the decision and how, under which notice (in the active language)."""
        line = (
            f"- {timezone.localtime(self.recorded_at):%Y-%m-%d %H:%M} "
            f"{self.get_decision_display()} ({self.get_method_display()})"
        )
        return line + (f", {self.notice}" if self.notice_id else "")

    @property
    def subject(self):
        return self.customer or self.operator
