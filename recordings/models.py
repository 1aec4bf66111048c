"""Recordings fetched from Twilio, kept encrypted for the purposes they were consented for.

A ``Recording`` follows Twilio's recording from its first status callback to its purge:

    in progress → completed at Twilio → stored (encrypted) → purged
                               ↘ fetch failed (retry)   ↘ held (never purged while held)
    absent / failed at Twilio, or refused at ingest (no consent): nothing is downloaded.

Its audio is never stored in the clear: the blob is AES-256-GCM segments under a key of its
own, and that key is kept here only wrapped by a master key (``recordings.crypto``).
Destroying the wrapped key makes the audio unrecoverable, backups included.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Exists, OuterRef, Q
from django.db.models.deletion import ProtectedError
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from audit.models import AccessEvent
from contactcenter.models import Call
from contactcenter.transitions import StateMachine
from privacy.models import Notice, Purpose


def _held():
    return Exists(LegalHold.objects.active().filter(recording=OuterRef("pk")))


def refuse_to_delete_audited(recordings):
    """A recording the audit trail speaks of keeps its row (a purge keeps it too, with a
    tombstone): deleting it would leave events naming a recording that no longer exists."""
    audited = AccessEvent.objects.filter(recording_id__in=recordings.values("pk"))
    if audited.exists():
        raise ProtectedError(
            "A recording with access events cannot be deleted; purge it instead.",
            set(audited[:10]),
        )


class RecordingQuerySet(models.QuerySet):
    def delete(self):
        refuse_to_delete_audited(self)
        return super().delete()

    def on_hold(self):
        return self.filter(_held())

    def not_on_hold(self):
        return self.exclude(_held())

    def with_hold(self):
        """Each recording with ``has_active_hold``, in the same query (for lists)."""
        return self.annotate(has_active_hold=_held())

    def due_for_purge(self, at=None):
        """Stored recordings whose every purpose window has closed and that no hold keeps, and
        recordings that could not be fetched whose consent was withdrawn or whose window
        closed: they hold no copy of ours, but Twilio still holds one."""
        at = at or timezone.now()
        return self.filter(
            status__in=[Recording.Status.STORED, Recording.Status.FETCH_FAILED],
            retain_until__lte=at,
        ).not_on_hold()

    def transition(self, pk, *, to, only_from=None, **fields):
        """Move recording ``pk`` to status ``to`` if its status may become it (and, given
        ``only_from``, is one of those), writing ``fields`` with it; return whether it moved."""
        return self.filter(pk=pk).transition_all(to=to, only_from=only_from, **fields) == 1

    def transition_all(self, *, to, only_from=None, **fields):
        """The batch form of ``transition``: move every recording of this queryset whose
        status may become ``to``, in one UPDATE; return how many moved."""
        return Recording.STATUS_TRANSITIONS.apply(self, to=to, only_from=only_from, **fields)


class Recording(models.Model):
    class Status(models.TextChoices):
        IN_PROGRESS = "in_progress", _("Recording at Twilio")
        COMPLETED = "completed", _("Waiting to be fetched")
        STORED = "stored", _("Stored (encrypted)")
        FETCH_FAILED = "fetch_failed", _("取得失敗 (fetch failed)")
        ABSENT = "absent", _("No audio (Twilio)")
        FAILED = "failed", _("Failed at Twilio")
        REFUSED = "refused", _("Not fetched: no consent")
        PURGED = "purged", _("Purged")

    # The pipeline of the module docstring. Absent, failed, refused and purged are final: a
    # recording refused at ingest is never fetched, and a stored one is refused no more (a
    # withdrawal purges it instead).
    STATUS_TRANSITIONS = StateMachine(
        "status",
        {
            Status.IN_PROGRESS: {Status.COMPLETED, Status.ABSENT, Status.FAILED},
            Status.COMPLETED: {Status.STORED, Status.FETCH_FAILED, Status.REFUSED},
            # Purged too: a recording we never managed to fetch still has a copy at Twilio,
            # which must go when its consent is withdrawn or its retention ends.
            Status.FETCH_FAILED: {Status.COMPLETED, Status.STORED, Status.REFUSED, Status.PURGED},
            Status.STORED: {Status.PURGED},
            Status.ABSENT: (),
            Status.FAILED: (),
            Status.REFUSED: (),
            Status.PURGED: (),
        },
    )

    sid = models.CharField(_("recording SID"), max_length=34, unique=True)
    call = models.ForeignKey(
        Call, on_delete=models.PROTECT, related_name="recordings", verbose_name=_("call")
    )
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.IN_PROGRESS
    )
    duration = models.PositiveIntegerField(_("duration (seconds)"), null=True, blank=True)
    channels = models.PositiveSmallIntegerField(_("channels"), null=True, blank=True)
    source = models.CharField(_("source"), max_length=40, blank=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    media_url = models.URLField(_("media URL at Twilio"), max_length=300, blank=True)
    twilio_error_code = models.CharField(_("Twilio error code"), max_length=10, blank=True)

    # The encrypted copy.
    blob_name = models.CharField(_("stored file"), max_length=200, blank=True)
    key_id = models.CharField(_("master key ID"), max_length=32, blank=True)
    wrapped_key = models.BinaryField(_("wrapped key"), null=True, blank=True, editable=False)
    plaintext_size = models.BigIntegerField(_("audio size (bytes)"), null=True, blank=True)
    ciphertext_size = models.BigIntegerField(_("stored size (bytes)"), null=True, blank=True)
    plaintext_sha256 = models.CharField(_("SHA-256 of the audio"), max_length=64, blank=True)
    ciphertext_sha256 = models.CharField(_("SHA-256 of the stored file"), max_length=64, blank=True)
    stored_at = models.DateTimeField(_("stored at"), null=True, blank=True)

    fetch_attempts = models.PositiveIntegerField(_("fetch attempts"), default=0)
    fetch_started_at = models.DateTimeField(_("last fetch started at"), null=True, blank=True)
    # The file the current (or a killed) fetch writes; deleted by the next attempt.
    partial_blob_name = models.CharField(_("file being written"), max_length=200, blank=True)
    consent_withdrawn_at = models.DateTimeField(
        _("consent withdrawn at"),
        null=True,
        blank=True,
        help_text=_("When a party took their consent back; the recording is purged at once."),
    )
    last_error = models.TextField(_("last error"), blank=True)
    twilio_deleted_at = models.DateTimeField(_("deleted at Twilio"), null=True, blank=True)
    retain_until = models.DateTimeField(
        _("kept until"),
        null=True,
        blank=True,
        help_text=_("When the last purpose window closes; the recording is purged after it."),
    )
    purge_requested = models.CharField(
        _("purge asked for"),
        max_length=20,
        blank=True,
        help_text=_(
            "Why the recording is purged before its retention ends (consent withdrawn, "
            "a customer's request)."
        ),
    )
    # A supervisor may offer a recording to every operator for training review (only while
    # its training window is open).
    training_material_at = models.DateTimeField(
        _("marked as training material at"), null=True, blank=True
    )
    training_material_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
        verbose_name=_("marked as training material by"),
    )
    # Use stopped at the customer's request (APPI art. 35 利用停止) while the recording is
    # kept: nobody may use it any more (playback, training, provision to a third party), but
    # it stays until its retention ends or the customer asks for its deletion.
    sealed_at = models.DateTimeField(_("use stopped (sealed) at"), null=True, blank=True)
    sealed_reason = models.TextField(_("reason use was stopped"), blank=True)
    sealed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
        verbose_name=_("use stopped by"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    objects = RecordingQuerySet.as_manager()

    class Meta:
        verbose_name = _("recording")
        verbose_name_plural = _("recordings")
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "retain_until"], name="recording_purge_idx"),
            # The list of those due for purge, by retention date (recordings/admin.py).
            models.Index(fields=["retain_until"], name="recording_retain_until_idx"),
            # The list's filters of the few: recordings with an error, training material
            # (partial indexes: a row only for those, found without reading millions).
            models.Index(fields=["id"], condition=~Q(last_error=""), name="recording_error_idx"),
            models.Index(
                fields=["id"],
                condition=Q(training_material_at__isnull=False),
                name="recording_training_idx",
            ),
        ]
        permissions = [
            ("play_recording", _("Can play recordings for an open purpose")),
            ("review_for_training", _("Can review recordings open for training")),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(status="stored") | (Q(wrapped_key__isnull=False) & ~Q(blob_name="")),
                name="recording_stored_has_key_and_blob",
            ),
        ]

    def __str__(self):
        return self.sid

    def delete(self, *args, **kwargs):
        refuse_to_delete_audited(Recording.objects.filter(pk=self.pk))
        return super().delete(*args, **kwargs)

    @property
    def is_sealed(self):
        return self.sealed_at is not None


class RecordingPurpose(models.Model):
    """A purpose a recording may be used for, until its own window closes."""

    recording = models.ForeignKey(
        Recording, on_delete=models.CASCADE, related_name="purposes", verbose_name=_("recording")
    )
    purpose = models.ForeignKey(
        Purpose, on_delete=models.PROTECT, related_name="+", verbose_name=_("purpose")
    )
    notice = models.ForeignKey(
        Notice, on_delete=models.PROTECT, related_name="+", verbose_name=_("notice")
    )
    usable_until = models.DateTimeField(_("usable until"))
    allows_training_review = models.BooleanField(_("training review allowed"), default=False)

    class Meta:
        verbose_name = _("recording purpose")
        verbose_name_plural = _("recording purposes")
        ordering = ["usable_until"]
        constraints = [
            models.UniqueConstraint(fields=["recording", "purpose"], name="recording_purpose_once"),
        ]

    def __str__(self):
        # In local time, as every other date on the page (2027-02-24 here, not UTC's 02-23).
        return f"{self.purpose} ({timezone.localtime(self.usable_until):%Y-%m-%d})"

    @property
    def is_open(self):
        return timezone.now() < self.usable_until


class LegalHoldQuerySet(models.QuerySet):
    def active(self):
        return self.filter(released_at__isnull=True)


class LegalHold(models.Model):
    """A reason to keep a recording past its retention: it is never purged while held."""

    recording = models.ForeignKey(
        Recording, on_delete=models.PROTECT, related_name="holds", verbose_name=_("recording")
    )
    reason = models.TextField(_("reason"))
    placed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("placed by"),
    )
    placed_at = models.DateTimeField(_("placed at"), default=timezone.now)
    released_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
        verbose_name=_("released by"),
    )
    released_at = models.DateTimeField(_("released at"), null=True, blank=True)
    release_reason = models.TextField(_("reason for release"), blank=True)

    objects = LegalHoldQuerySet.as_manager()

    class Meta:
        verbose_name = _("legal hold")
        verbose_name_plural = _("legal holds")
        ordering = ["-placed_at"]
        permissions = [("manage_legal_hold", _("Can place and release legal holds"))]

    def __str__(self):
        return f"{self.recording} — {self.reason[:40]}"


class Tombstone(models.Model):
    """What was deleted, when, why and by whom: all that is left of a purged recording."""

    class Reason(models.TextChoices):
        RETENTION = "retention", _("Retention period ended")
        NO_CONSENT = "no_consent", _("No consent to recording")
        CONSENT_WITHDRAWN = "consent_withdrawn", _("Consent withdrawn")
        CUSTOMER_REQUEST = "customer_request", _("Customer's request")

    recording = models.OneToOneField(
        Recording, on_delete=models.PROTECT, related_name="tombstone", verbose_name=_("recording")
    )
    reason = models.CharField(_("reason"), max_length=20, choices=Reason.choices)
    detail = models.TextField(_("detail"), blank=True)
    deleted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
        verbose_name=_("deleted by"),
    )
    deleted_by_system = models.CharField(_("deleted by (system)"), max_length=60, blank=True)
    deleted_at = models.DateTimeField(_("deleted at"), default=timezone.now)
    had_stored_copy = models.BooleanField(_("an encrypted copy was destroyed"), default=False)
    plaintext_sha256 = models.CharField(_("SHA-256 of the audio"), max_length=64, blank=True)

    class Meta:
        verbose_name = _("tombstone")
        verbose_name_plural = _("tombstones")
        ordering = ["-deleted_at"]

    def __str__(self):
        return f"{self.recording} ({self.get_reason_display()})"


class OutboxMessage(models.Model):
    """A task to hand to Celery, written in the same transaction as the change that needs it.

    A relay publishes pending messages (right after the transaction commits, then every
    minute from beat, or ``manage.py relay_outbox``), so a task is never lost while Redis is
    down: it waits here. Tasks are idempotent, so publishing one twice is harmless.
    """

    task = models.CharField(_("task"), max_length=200)
    kwargs = models.JSONField(_("arguments"), default=dict)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    published_at = models.DateTimeField(_("published at"), null=True, blank=True)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    last_error = models.TextField(_("last error"), blank=True)

    class Meta:
        verbose_name = _("outbox message")
        verbose_name_plural = _("outbox messages")
        ordering = ["pk"]
        indexes = [
            models.Index(
                fields=["created_at"],
                condition=Q(published_at__isnull=True),
                name="outbox_pending_idx",
            )
        ]

    def __str__(self):
        return f"{self.task} {self.kwargs}"


class ReconciliationRun(models.Model):
    """One pass of the reconciliation with Twilio (``recordings.reconcile``): what it saw in
    Twilio's lists and what it changed, or why it failed."""

    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")

    started_at = models.DateTimeField(_("started at"), default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    since = models.DateTimeField(_("listed since"))
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.RUNNING
    )
    recordings_seen = models.PositiveIntegerField(_("recordings seen at Twilio"), default=0)
    calls_seen = models.PositiveIntegerField(_("calls checked at Twilio"), default=0)
    created = models.PositiveIntegerField(_("recordings created"), default=0)
    queued = models.PositiveIntegerField(_("fetches queued"), default=0)
    deleted_at_twilio = models.PositiveIntegerField(_("deleted at Twilio"), default=0)
    calls_closed = models.PositiveIntegerField(_("calls closed"), default=0)
    errors = models.PositiveIntegerField(_("errors"), default=0)
    error_text = models.TextField(_("errors (text)"), blank=True)

    class Meta:
        verbose_name = _("reconciliation with Twilio")
        verbose_name_plural = _("reconciliations with Twilio")
        ordering = ["-started_at", "-pk"]

    def __str__(self):
        return f"{timezone.localtime(self.started_at):%Y-%m-%d %H:%M} ({self.get_status_display()})"


# --- the third-party provision ledger (第三者提供記録, APPI arts. 29/30) ------------------------


class ProvisionRecordQuerySet(models.QuerySet):
    """Append-only, like the consent ledger: a record is never changed, and only the expiry
    of its retention deletes it (``recordings.provision.delete_expired``, audited)."""

    def update(self, **kwargs):
        raise ValidationError(_("Provision records cannot be changed."))

    def delete(self):
        raise ValidationError(
            _("Provision records cannot be deleted; they are deleted when their retention ends.")
        )

    def unexpired(self, at=None):
        return self.filter(retain_until__gt=at or timezone.now())

    def expired(self, at=None):
        return self.filter(retain_until__lte=at or timezone.now())

    def claim_export(self, pk, *, at):
        """Mark record ``pk``'s export as downloaded, if it was not yet; return whether this
        call did it (a conditional UPDATE: two downloads at once, one wins)."""
        rows = models.QuerySet.update(self.filter(pk=pk, exported_at__isnull=True), exported_at=at)
        return rows == 1

    def delete_expired(self, at):
        """Delete the records whose retention ended by ``at``; the only deletion there is."""
        return models.QuerySet.delete(self.expired(at))


class ProvisionRecord(models.Model):
    """One hand-over of a recording or call data to someone outside the company.

    What APPI art. 29 and rule 20 ask the provider to record: when, to whom (name, and the
    address of a company), about whom, which items, and on which basis (for consent, that
    the person consented). Hand-overs on a legal ground (art. 27(1)) and to the company that
    entrusted the work (art. 27(5)(i)) need no record in law; they are recorded all the same,
    so that every hand-over can be accounted for.
    """

    class RecipientKind(models.TextChoices):
        CLIENT = "client", _("Client company")
        INSURER = "insurer", _("Insurer")
        LAWYER = "lawyer", _("Lawyer")
        POLICE = "police", _("Police")
        COURT = "court", _("Court")
        OTHER = "other", _("Other recipient")

    class Item(models.TextChoices):
        AUDIO = "audio", _("Call recording (audio)")
        CALL = "call", _("Call record")
        CONSENT = "consent", _("Consent records")
        EVIDENCE_PACKAGE = (
            "evidence_package",
            _("Evidence package (signed: audio, call, consent records, notice, audit events)"),
        )

    class Basis(models.TextChoices):
        CONSENT = "consent", _("The customer's consent to this provision")
        LEGAL_GROUND = "legal_ground", _("Required by law (APPI art. 27(1))")
        ENTRUSTMENT = "entrustment", _("Entrustment (to the client that entrusted the work)")

    class ConsentMethod(models.TextChoices):
        WRITTEN = "written", _("In writing (signed form, letter)")
        RECORDED_CALL = "recorded_call", _("Orally, on a recorded call")
        EMAIL = "email", _("By email or web form")

    provided_at = models.DateTimeField(_("provided at"), default=timezone.now)
    recipient_name = models.CharField(_("recipient (name)"), max_length=200)
    recipient_kind = models.CharField(
        _("kind of recipient"), max_length=16, choices=RecipientKind.choices
    )
    recipient_address = models.TextField(
        _("recipient's address or contact"),
        help_text=_("For a company or an office: its address."),
    )
    customer = models.ForeignKey(
        "contactcenter.Customer",
        on_delete=models.PROTECT,
        related_name="provision_records",
        null=True,
        blank=True,
        verbose_name=_("customer"),
    )
    # The number as text too, so that the record reads on its own (and is found by number).
    phone_number = models.CharField(_("phone number"), max_length=16, blank=True)
    call = models.ForeignKey(
        Call, on_delete=models.PROTECT, related_name="provision_records", verbose_name=_("call")
    )
    recording = models.ForeignKey(
        Recording,
        on_delete=models.PROTECT,
        related_name="provision_records",
        verbose_name=_("recording"),
    )
    items = models.JSONField(_("items provided"), default=list)
    basis = models.CharField(_("basis of the provision"), max_length=16, choices=Basis.choices)
    ground_text = models.TextField(
        _("legal ground (law or order)"),
        blank=True,
        help_text=_("For a legal ground: which law or order, with its reference number."),
    )
    # The consent to a provision is its own consent (to this recipient, for this use), not
    # the consent to recording the consent ledger keeps: the record carries its evidence.
    consent_method = models.CharField(
        _("how consent was given"), max_length=16, choices=ConsentMethod.choices, blank=True
    )
    consent_obtained_at = models.DateField(_("consent given on"), null=True, blank=True)
    consent_statement = models.TextField(
        _("how the consent was confirmed"),
        blank=True,
        help_text=_("Who confirmed it, and where the evidence is kept."),
    )
    in_contract_document = models.BooleanField(
        _("recorded in a contract with the person"),
        default=False,
        help_text=_(
            "The provision is part of a service to the person and its details are written in "
            "the contract or other documents of that service (rule 19(3)): kept 1 year."
        ),
    )
    provided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("provided by"),
    )
    retain_until = models.DateTimeField(_("record kept until"))
    note = models.TextField(_("note"), blank=True)
    exported_at = models.DateTimeField(_("export downloaded at"), null=True, blank=True)

    objects = ProvisionRecordQuerySet.as_manager()

    class Meta:
        verbose_name = _("third-party provision record")
        verbose_name_plural = _("third-party provision records")
        ordering = ["-provided_at", "-pk"]
        indexes = [
            models.Index(fields=["phone_number", "-provided_at"], name="provision_number_idx"),
            models.Index(fields=["retain_until"], name="provision_retain_until_idx"),
        ]
        permissions = [
            ("provide_to_third_party", _("Can provide recordings to a third party")),
        ]

    def __str__(self):
        return f"{self.local_date} {self.recipient_name} ({self.get_recipient_kind_display()})"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ValidationError(_("Provision records cannot be changed."))
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValidationError(
            _("Provision records cannot be deleted; they are deleted when their retention ends.")
        )

    @property
    def local_date(self):
        return f"{timezone.localtime(self.provided_at):%Y-%m-%d}"

    def item_labels(self):
        labels = dict(self.Item.choices)
        return [str(labels.get(item, item)) for item in self.items]

    def summary_ja(self):
        """What the person may see of this record (APPI art. 33(5)), in Japanese: the date,
        the recipient and its kind, the items and the basis. Not the staff member, the
        address or the note."""
        with translation.override("ja"):
            return {
                "date": self.local_date,
                "recipient": self.recipient_name,
                "recipient_kind": str(self.get_recipient_kind_display()),
                "items": self.item_labels(),
                "basis": str(self.get_basis_display()),
                "ground": self.ground_text if self.basis == self.Basis.LEGAL_GROUND else "",
            }
