"""The customer portal: callers prove they hold a phone number before they see anything."""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from contactcenter.transitions import StateMachine


class PhoneVerification(models.Model):
    """A one-time code sent to a phone number by SMS or by a voice call.

    Only a keyed hash of the code is kept. A code is valid for ten minutes, once, and allows
    five attempts; with Twilio Verify the code never reaches us at all.
    """

    class Channel(models.TextChoices):
        SMS = "sms", _("Text message (SMS)")
        CALL = "call", _("Voice call")

    phone_number = models.CharField(_("phone number"), max_length=16, db_index=True)
    channel = models.CharField(_("sent by"), max_length=4, choices=Channel.choices)
    code_hash = models.CharField(_("code (keyed hash)"), max_length=64, blank=True)
    via_twilio_verify = models.BooleanField(_("checked by Twilio Verify"), default=False)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    expires_at = models.DateTimeField(_("expires at"))
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    verified_at = models.DateTimeField(_("verified at"), null=True, blank=True)
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)

    class Meta:
        verbose_name = _("phone verification")
        verbose_name_plural = _("phone verifications")
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.phone_number} ({self.created_at:%Y-%m-%d %H:%M})"


def request_reference():
    """A reference a customer can read out on the phone: RQ- and 8 unambiguous characters."""
    import secrets

    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    return "RQ-" + "".join(secrets.choice(alphabet) for _ in range(8))


class CustomerRequestQuerySet(models.QuerySet):
    def transition(self, pk, *, to, only_from=None, **fields):
        """Move request ``pk`` to status ``to`` if its status may become it (and, given
        ``only_from``, is one of those), writing ``fields`` with it; return whether it moved."""
        moved = CustomerRequest.STATUS_TRANSITIONS.apply(
            self.filter(pk=pk), to=to, only_from=only_from, **fields
        )
        return moved == 1


class CustomerRequest(models.Model):
    """A caller's request about their recordings (APPI: disclosure, deletion, suspension of
    use; withdrawal of consent), made after proving their number."""

    class Kind(models.TextChoices):
        HEAR = "hear", _("Hear the recording (録音を聞きたい)")
        COPY = "copy", _("A copy (写しがほしい)")
        DELETE = "delete", _("Delete it (削除してほしい)")
        SUSPEND = "suspend", _("Stop using it (利用停止)")
        WITHDRAW = "withdraw", _("Withdraw consent to recording (録音への同意を撤回)")

    class CopyFormat(models.TextChoices):
        LINK = "link", _("A link to listen")
        FILE = "file", _("An audio file to download, with the call and consent details")

    class Status(models.TextChoices):
        RECEIVED = "received", _("Received")
        IN_REVIEW = "in_review", _("In review")
        DONE = "done", _("Done")
        REFUSED = "refused", _("Refused")

    # Open while received or in review (staff move it between the two); a decision closes
    # it for good.
    STATUS_TRANSITIONS = StateMachine(
        "status",
        {
            Status.RECEIVED: {Status.IN_REVIEW, Status.DONE, Status.REFUSED},
            Status.IN_REVIEW: {Status.RECEIVED, Status.DONE, Status.REFUSED},
            Status.DONE: (),
            Status.REFUSED: (),
        },
    )

    class RefusalGround(models.TextChoices):
        # APPI Article 33(2): the grounds on which a disclosure may be refused.
        HARM = "harm", _("It could harm the life, body, property or other rights of someone")
        BUSINESS = "business", _("It would seriously hinder our business")
        LAW = "law", _("It would break another law")
        IDENTITY = "identity", _("We could not confirm the requester's identity or authority")
        NOT_HELD = "not_held", _("We hold no such recording")

    reference = models.CharField(
        _("reference"), max_length=12, unique=True, default=request_reference, editable=False
    )
    phone_number = models.CharField(_("proven phone number"), max_length=16, db_index=True)
    customer = models.ForeignKey(
        "contactcenter.Customer",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="requests",
        verbose_name=_("customer"),
    )
    kind = models.CharField(_("request"), max_length=10, choices=Kind.choices)
    copy_format = models.CharField(
        _("form of the copy"), max_length=4, choices=CopyFormat.choices, blank=True
    )
    calls = models.ManyToManyField(
        "contactcenter.Call", blank=True, related_name="customer_requests", verbose_name=_("calls")
    )
    message = models.TextField(_("message from the requester"), blank=True)
    on_behalf = models.BooleanField(_("made on someone's behalf"), default=False)
    representative = models.CharField(
        _("representative and relationship"), max_length=200, blank=True
    )
    language = models.CharField(_("language"), max_length=5, default="ja")
    answer_by = models.CharField(
        _("answer by"),
        max_length=4,
        choices=PhoneVerification.Channel.choices,
        default=PhoneVerification.Channel.SMS,
        help_text=_(
            "Decided when the number was proven: SMS only to a mobile proven by SMS, otherwise "
            "a voice call in Japanese."
        ),
    )
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.RECEIVED
    )
    created_at = models.DateTimeField(_("received at"), default=timezone.now)
    due_at = models.DateTimeField(_("answer due"))
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("assigned to"),
    )
    staff_notes = models.TextField(_("notes"), blank=True)
    decision_reason = models.TextField(_("reason for the decision"), blank=True)
    refusal_ground = models.CharField(
        _("ground for refusal"), max_length=10, choices=RefusalGround.choices, blank=True
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("decided by"),
    )
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)

    objects = CustomerRequestQuerySet.as_manager()

    class Meta:
        verbose_name = _("customer request")
        verbose_name_plural = _("customer requests")
        ordering = ["due_at"]
        indexes = [models.Index(fields=["status", "due_at"], name="request_queue_idx")]

    def __str__(self):
        return f"{self.reference} {self.get_kind_display()}"

    @property
    def is_open(self):
        return self.status in (self.Status.RECEIVED, self.Status.IN_REVIEW)

    @property
    def wants_file(self):
        return self.kind == self.Kind.COPY and self.copy_format == self.CopyFormat.FILE

    @property
    def is_overdue(self):
        return self.is_open and timezone.now() > self.due_at


class ListeningLink(models.Model):
    """A customer's signed link to hear one recording: limited in time and in plays."""

    request = models.ForeignKey(
        CustomerRequest, on_delete=models.CASCADE, related_name="links", verbose_name=_("request")
    )
    recording = models.ForeignKey(
        "recordings.Recording",
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("recording"),
    )
    token_hash = models.CharField(_("link (hash)"), max_length=64, unique=True)
    expires_at = models.DateTimeField(_("expires at"))
    max_plays = models.PositiveSmallIntegerField(_("plays allowed"), default=3)
    plays = models.PositiveSmallIntegerField(_("plays"), default=0)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("listening link")
        verbose_name_plural = _("listening links")

    def __str__(self):
        return f"{self.request.reference} → {self.recording}"


class PhonePlay(models.Model):
    """One call we place to play a listening link's recording: its audio URL serves that one
    playback and nothing after it (it is signed, but whoever saw it could replay it for its
    15 minutes: a bearer link, unless it is used up)."""

    link = models.ForeignKey(
        ListeningLink,
        on_delete=models.CASCADE,
        related_name="phone_plays",
        verbose_name=_("listening link"),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    first_fetch_at = models.DateTimeField(_("audio first fetched at"), null=True, blank=True)
    fetched_from = models.GenericIPAddressField(_("fetched from"), null=True, blank=True)
    whole_fetched = models.BooleanField(_("whole audio served"), default=False)

    class Meta:
        verbose_name = _("phone playback")
        verbose_name_plural = _("phone playbacks")

    def __str__(self):
        return f"{self.link} ({self.created_at:%Y-%m-%d %H:%M})"
