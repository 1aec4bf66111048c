"""Personal-data breaches (漏えい等, APPI art. 26, PPC rules 7–10).

An ``Incident`` is recorded when a breach becomes known. It is scoped from the system
(``scoping``: which recordings were in the affected storage, period, account or master key),
each affected recording gets the strong-encryption test (``encryption``), and the incident is
reportable when a rule 7 category applies and at least one affected recording was not
protected. Its clocks (``clocks``) run from ``became_known_at``; the drafts of both reports
(``drafts``) are written from it; the persons are told (``notify``) by SMS, a voice call or
the public notice.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from contactcenter.models import Customer, Operator
from recordings.models import Recording


class Incident(models.Model):
    class Cause(models.TextChoices):
        UNAUTHORISED_ACCESS = "unauthorised_access", _("Unauthorised access")
        LOSS_OR_THEFT = "loss_or_theft", _("Loss or theft of a device or medium")
        MISDELIVERY = "misdelivery", _("Sent or handed to the wrong recipient")
        MISCONFIGURATION = "misconfiguration", _("Misconfiguration")
        MALWARE = "malware", _("Malware")
        INSIDER = "insider", _("An employee's wrongful act")
        OTHER = "other", _("Other")

    class ScopeKind(models.TextChoices):
        STORAGE = "storage", _("The recordings storage")
        PERIOD = "period", _("Calls in a period")
        ACCOUNT = "account", _("A staff account or an operator")
        MASTER_KEY = "master_key", _("A master key")

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        CLOSED = "closed", _("Closed")

    class ScopeState(models.TextChoices):
        NOT_SCOPED = "not_scoped", _("Not scoped yet")
        RUNNING = "running", _("Scoping")
        DONE = "done", _("Scoped")

    reference = models.CharField(_("reference"), max_length=16, unique=True, editable=False)
    title = models.CharField(_("title"), max_length=200)
    description = models.TextField(_("what happened"))
    occurred_from = models.DateTimeField(_("occurred from"), null=True, blank=True)
    occurred_to = models.DateTimeField(_("occurred until"), null=True, blank=True)
    became_known_at = models.DateTimeField(
        _("became known at"),
        help_text=_("When the business became aware of it: the report deadlines run from here."),
    )
    cause = models.CharField(
        _("suspected cause"), max_length=24, choices=Cause.choices, default=Cause.OTHER
    )
    cause_detail = models.TextField(_("cause (details)"), blank=True)

    # PPC rule 7 (1)–(4).
    category_sensitive = models.BooleanField(
        _("(1) special-care-required personal information"), default=False
    )
    category_financial = models.BooleanField(
        _("(2) data whose misuse may cause financial loss"), default=False
    )
    category_unlawful = models.BooleanField(
        _("(3) suspected unlawful purpose (e.g. unauthorised access)"), default=False
    )
    category_financial_counted = models.BooleanField(
        _("(2) set from recordings that may contain card data"), default=False, editable=False
    )
    category_many = models.BooleanField(_("(4) more than 1,000 persons"), default=False)
    category_many_counted = models.BooleanField(
        _("(4) set from the counted persons"), default=False, editable=False
    )

    data_items = models.TextField(
        _("items of personal data concerned"),
        default=_("Call recordings (voice), callers' phone numbers, dates and times of calls"),
    )

    scope_kind = models.CharField(
        _("affected scope"), max_length=16, choices=ScopeKind.choices, default=ScopeKind.STORAGE
    )
    scope_from = models.DateTimeField(_("scope from"), null=True, blank=True)
    scope_to = models.DateTimeField(_("scope until"), null=True, blank=True)
    scope_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
        verbose_name=_("staff account in scope"),
    )
    scope_operator = models.ForeignKey(
        Operator,
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
        verbose_name=_("operator in scope"),
    )
    affected_key_ids = models.JSONField(
        _("master key IDs in the affected scope"),
        default=list,
        blank=True,
        help_text=_(
            "The RECORDINGS_MASTER_KEYS ids that were (or may have been) exposed as well; a "
            "recording wrapped with one of them is not protected."
        ),
    )

    status = models.CharField(_("status"), max_length=8, choices=Status.choices, default="open")
    secondary_damage = models.TextField(_("secondary damage or its risk"), blank=True)
    recurrence_measures = models.TextField(_("measures to prevent recurrence"), blank=True)
    other_notes = models.TextField(_("other relevant matters"), blank=True)

    # Scoping and the encryption test, counted once when they run (the page reads these).
    scope_state = models.CharField(
        _("scoping"), max_length=12, choices=ScopeState.choices, default="not_scoped"
    )
    scope_started_at = models.DateTimeField(_("scoping started at"), null=True, blank=True)
    scoped_at = models.DateTimeField(_("scoped at"), null=True, blank=True)
    scope_progress = models.BigIntegerField(_("recordings scoped so far"), default=0)
    scope_last_recording = models.BigIntegerField(
        _("last recording scoped"), default=0, editable=False
    )
    scoped_recordings = models.BigIntegerField(_("affected recordings"), default=0)
    scoped_calls = models.BigIntegerField(_("affected calls"), default=0)
    scoped_persons = models.BigIntegerField(_("affected numbers (persons)"), default=0)
    scoped_card_data_recordings = models.BigIntegerField(
        _("affected recordings that may contain card data"), default=0
    )
    tested_at = models.DateTimeField(_("encryption test run at"), null=True, blank=True)
    protected_recordings = models.BigIntegerField(_("protected recordings"), default=0)
    unprotected_recordings = models.BigIntegerField(_("recordings not protected"), default=0)
    unprotected_persons = models.BigIntegerField(_("persons not protected"), default=0)

    preliminary_submitted_at = models.DateTimeField(
        _("preliminary report submitted at"), null=True, blank=True
    )
    preliminary_submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
        verbose_name=_("preliminary report submitted by"),
    )
    final_submitted_at = models.DateTimeField(_("final report submitted at"), null=True, blank=True)
    final_submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
        verbose_name=_("final report submitted by"),
    )

    public_notice_text = models.TextField(_("public notice (Japanese)"), blank=True)
    public_notice_text_en = models.TextField(_("public notice (English)"), blank=True)
    public_notice_published_at = models.DateTimeField(
        _("public notice published at"), null=True, blank=True
    )

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
        verbose_name=_("recorded by"),
    )
    created_at = models.DateTimeField(_("recorded at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("incident")
        verbose_name_plural = _("incidents")
        ordering = ["-became_known_at"]
        indexes = [models.Index(fields=["status", "became_known_at"], name="incident_open_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(occurred_from__isnull=True)
                | Q(occurred_to__isnull=True)
                | Q(occurred_from__lte=models.F("occurred_to")),
                name="incident_occurred_in_order",
            ),
        ]

    def __str__(self):
        return f"{self.reference} {self.title}"

    def clean(self):
        from django.core.exceptions import ValidationError

        errors = {}
        if self.occurred_from and self.occurred_to and self.occurred_from > self.occurred_to:
            errors["occurred_to"] = _("The end of the occurrence comes before its start.")
        if self.scope_from and self.scope_to and self.scope_from >= self.scope_to:
            errors["scope_to"] = _("The end of the scope must come after its start.")
        if self.scope_kind == self.ScopeKind.PERIOD and not (self.scope_from and self.scope_to):
            errors["scope_from"] = _("A period scope needs its start and end.")
        if (
            self.scope_kind == self.ScopeKind.ACCOUNT
            and not self.scope_user_id
            and not self.scope_operator_id
        ):
            errors["scope_user"] = _("Choose the staff account or the operator in scope.")
        if self.scope_kind == self.ScopeKind.MASTER_KEY and not self.affected_key_ids:
            errors["affected_key_ids"] = _("Name the master key IDs in the affected scope.")
        if not isinstance(self.affected_key_ids, list) or not all(
            isinstance(key_id, str) for key_id in self.affected_key_ids
        ):
            errors["affected_key_ids"] = _('Write the key IDs as a list, e.g. ["key-2025"].')
        if errors:
            raise ValidationError(errors)

    @property
    def categories(self):
        """The rule 7 items that apply, as their numbers."""
        flags = (
            self.category_sensitive,
            self.category_financial or self.category_financial_counted,
            self.category_unlawful,
            self.category_many or self.category_many_counted,
        )
        return [number for number, flag in enumerate(flags, start=1) if flag]


class AffectedRecording(models.Model):
    """A recording in an incident's scope and the result of its strong-encryption test."""

    class Result(models.TextChoices):
        UNTESTED = "untested", _("Not tested yet")
        PROTECTED = "protected", _("Protected (strong encryption, key kept apart)")
        NOT_PROTECTED = "not_protected", _("Not protected")
        NOTHING_HELD = "nothing_held", _("Nothing readable held")

    incident = models.ForeignKey(
        Incident, on_delete=models.CASCADE, related_name="affected", verbose_name=_("incident")
    )
    recording = models.ForeignKey(
        Recording, on_delete=models.PROTECT, related_name="+", verbose_name=_("recording")
    )
    customer = models.ForeignKey(
        Customer,
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
        verbose_name=_("customer"),
    )
    call_id = models.BigIntegerField(_("call"), null=True)
    result = models.CharField(
        _("result"), max_length=16, choices=Result.choices, default="untested"
    )
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    evidence = models.JSONField(_("evidence"), default=dict, blank=True)

    class Meta:
        verbose_name = _("affected recording")
        verbose_name_plural = _("affected recordings")
        constraints = [
            models.UniqueConstraint(
                fields=["incident", "recording"], name="affected_recording_once"
            ),
        ]
        indexes = [
            models.Index(fields=["incident", "result", "id"], name="affected_result_idx"),
            models.Index(fields=["incident", "customer"], name="affected_customer_idx"),
        ]

    def __str__(self):
        return f"{self.incident.reference} {self.recording_id}"


class IncidentNotification(models.Model):
    """One affected person told of an incident, by one channel; unique per person."""

    class Channel(models.TextChoices):
        SMS = "sms", _("Text message (SMS)")
        VOICE = "voice", _("Voice call")
        PUBLIC = "public", _("Public notice (substitute)")

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting to be sent")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed: the public notice is the substitute")
        PUBLIC = "public", _("Told by the public notice")

    incident = models.ForeignKey(
        Incident,
        on_delete=models.CASCADE,
        related_name="notifications",
        verbose_name=_("incident"),
    )
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="+", verbose_name=_("customer")
    )
    phone_number = models.CharField(_("phone number"), max_length=16, blank=True)
    channel = models.CharField(_("channel"), max_length=8, choices=Channel.choices)
    status = models.CharField(_("status"), max_length=8, choices=Status.choices, default="pending")
    twilio_sid = models.CharField(_("Twilio SID"), max_length=40, blank=True)
    error = models.TextField(_("error"), blank=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("notification of a person")
        verbose_name_plural = _("notifications of persons")
        constraints = [
            models.UniqueConstraint(fields=["incident", "customer"], name="notification_once"),
        ]
        indexes = [
            models.Index(fields=["incident", "status", "id"], name="notification_status_idx"),
        ]

    def __str__(self):
        return f"{self.incident.reference} {self.phone_number or self.customer_id}"


class IncidentReminder(models.Model):
    """A reminder email sent about one report's deadline: one row per (report, day), so each
    is sent once; deleted again when the email could not be sent, so the next run retries."""

    class Report(models.TextChoices):
        PRELIMINARY = "preliminary", _("Preliminary report (速報)")
        FINAL = "final", _("Final report (確報)")

    incident = models.ForeignKey(
        Incident, on_delete=models.CASCADE, related_name="reminders", verbose_name=_("incident")
    )
    report = models.CharField(_("report"), max_length=12, choices=Report.choices)
    # Days before the deadline it was sent for; -1 for the reminder that it is overdue.
    days_before = models.SmallIntegerField(_("days before the deadline"))
    sent_at = models.DateTimeField(_("sent at"), auto_now_add=True)

    class Meta:
        verbose_name = _("deadline reminder")
        verbose_name_plural = _("deadline reminders")
        constraints = [
            models.UniqueConstraint(
                fields=["incident", "report", "days_before"], name="incident_reminder_once"
            ),
        ]

    def __str__(self):
        return f"{self.incident.reference} {self.report} {self.days_before}"
