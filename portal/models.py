"""The customer portal: callers prove they hold a phone number before they see anything."""

from datetime import timedelta

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
    """A caller's request about their data (APPI arts. 28(3), 32–35: notification of purposes,
    disclosure, correction, suspension of use, deletion, stopping third-party provision, the
    cross-border measures, the records of provision; withdrawal of consent), made after
    proving their number."""

    class Kind(models.TextChoices):
        HEAR = "hear", _("Hear the recording (録音を聞きたい)")
        COPY = "copy", _("A copy (写しがほしい)")
        DELETE = "delete", _("Delete it (削除してほしい)")
        SUSPEND = "suspend", _("Stop using it (利用停止)")
        SEAL = "seal", _("Stop using it but keep the recording (利用停止（録音は保管）)")
        WITHDRAW = "withdraw", _("Withdraw consent to recording (録音への同意を撤回)")
        PURPOSE_NOTICE = "purpose_notice", _("Tell me the purposes of use (利用目的の通知)")
        CORRECT = "correct", _("Correct my data (訂正)")
        STOP_PROVISION = (
            "stop_provision",
            _("Stop providing my data to third parties (第三者提供の停止)"),
        )
        CROSS_BORDER = (
            "cross_border",
            _("Information on third parties abroad (外国にある第三者に関する情報)"),
        )
        PROVISION_RECORDS = (
            "provision_records",
            _("Disclose the records of provision to third parties (第三者提供記録の開示)"),
        )

    # The kinds that are about particular calls (the others are about the person).
    ABOUT_CALLS = frozenset({Kind.HEAR, Kind.COPY, Kind.DELETE, Kind.SUSPEND, Kind.SEAL})
    # The kind under which the organisation's fee policy names a kind, where it differs:
    # stopping use while keeping the recording is a 利用停止 (art. 35) like the other.
    FEE_KINDS = {Kind.SEAL: Kind.SUSPEND}

    class CorrectionTarget(models.TextChoices):
        NAME = "name", _("The name we have for you")
        CALL = "call", _("Details of a call (date, time, language, other)")

    class CopyFormat(models.TextChoices):
        LINK = "link", _("A link to listen")
        FILE = "file", _("An audio file to download, with the call and consent details")

    class Status(models.TextChoices):
        AWAITING_FEE = "awaiting_fee", _("Awaiting the fee (手数料の確認待ち)")
        RECEIVED = "received", _("Received")
        IN_REVIEW = "in_review", _("In review")
        DONE = "done", _("Done")
        REFUSED = "refused", _("Refused")
        CLOSED = "closed", _("Closed without action")

    # A request with a fee waits until staff confirm the payment, then is received. Open
    # while received or in review (staff move it between the two); a decision (granted,
    # refused, closed) ends it for good. Awaiting the fee, it may only be refused or closed.
    STATUS_TRANSITIONS = StateMachine(
        "status",
        {
            Status.AWAITING_FEE: {Status.RECEIVED, Status.REFUSED, Status.CLOSED},
            Status.RECEIVED: {Status.IN_REVIEW, Status.DONE, Status.REFUSED, Status.CLOSED},
            Status.IN_REVIEW: {Status.RECEIVED, Status.DONE, Status.REFUSED, Status.CLOSED},
            Status.DONE: (),
            Status.REFUSED: (),
            Status.CLOSED: (),
        },
    )
    OPEN_STATUSES = (Status.AWAITING_FEE, Status.RECEIVED, Status.IN_REVIEW)
    # APPI art. 39: the person may sue once two weeks have passed since the request reached
    # us, unless we have answered it.
    SUIT_AFTER = timedelta(days=14)

    class RefusalGround(models.TextChoices):
        # APPI Article 33(2): the grounds on which a disclosure may be refused.
        HARM = "harm", _("It could harm the life, body, property or other rights of someone")
        BUSINESS = "business", _("It would seriously hinder our business")
        LAW = "law", _("It would break another law")
        IDENTITY = "identity", _("We could not confirm the requester's identity or authority")
        NOT_HELD = "not_held", _("We hold no such recording")
        # APPI art. 34(2): a correction is made only where the data is found to be untrue.
        ACCURATE = "accurate", _("After checking, the data is correct as it stands")

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
    kind = models.CharField(_("request"), max_length=20, choices=Kind.choices)
    copy_format = models.CharField(
        _("form of the copy"), max_length=4, choices=CopyFormat.choices, blank=True
    )
    calls = models.ManyToManyField(
        "contactcenter.Call", blank=True, related_name="customer_requests", verbose_name=_("calls")
    )
    message = models.TextField(_("message from the requester"), blank=True)
    correction_target = models.CharField(
        _("what to correct"), max_length=4, choices=CorrectionTarget.choices, blank=True
    )
    correction_wrong = models.TextField(_("what is wrong (as the requester says)"), blank=True)
    correction_right = models.TextField(_("what is right (as the requester says)"), blank=True)
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
        _("status"), max_length=12, choices=Status.choices, default=Status.RECEIVED
    )
    fee_yen = models.PositiveIntegerField(
        _("fee (yen)"),
        default=0,
        help_text=_("The fee the organisation's policy set for this kind when it was made."),
    )
    fee_confirmed_at = models.DateTimeField(_("fee confirmed at"), null=True, blank=True)
    fee_confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("fee confirmed by"),
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
        return self.status in self.OPEN_STATUSES

    @property
    def awaits_fee(self):
        return self.status == self.Status.AWAITING_FEE

    @property
    def fee_kind(self):
        """The kind code the organisation's fee policy uses for this request."""
        return str(self.FEE_KINDS.get(self.kind, self.kind))

    @property
    def suit_possible_from(self):
        """The art. 39 mark: two weeks after the request reached us."""
        return self.created_at + self.SUIT_AFTER

    @property
    def past_suit_mark(self):
        return self.is_open and timezone.now() >= self.suit_possible_from

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


class DecisionNotice(models.Model):
    """The written decision on a request (APPI art. 36: the reasons are explained), kept with
    it and shown to the person at a signed link: the decision, its legal ground, the reasons
    in full, what was done or the answer, and how to ask again or complain.

    Written once, when the decision is made, in the request's language (``text_ja`` is the
    same notice in Japanese, read out to a landline); never changed afterwards.
    """

    class Decision(models.TextChoices):
        GRANTED = "granted", _("Request granted")
        REFUSED = "refused", _("Request refused")
        CLOSED = "closed", _("Closed without action")

    request = models.OneToOneField(
        CustomerRequest,
        on_delete=models.PROTECT,
        related_name="decision_notice",
        verbose_name=_("request"),
    )
    decision = models.CharField(_("decision made"), max_length=8, choices=Decision.choices)
    legal_ground = models.TextField(_("legal ground"))
    reasons = models.TextField(_("reasons"))
    answer = models.TextField(_("answer and what was done"), blank=True)
    recourse = models.TextField(_("how to ask again or complain"))
    text_ja = models.TextField(_("the notice in Japanese"))
    language = models.CharField(_("language"), max_length=5, default="ja")
    issued_at = models.DateTimeField(_("issued at"), default=timezone.now)
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("issued by"),
    )

    class Meta:
        verbose_name = _("decision notice")
        verbose_name_plural = _("decision notices")

    def __str__(self):
        return f"{self.request.reference} {self.get_decision_display()}"

    @property
    def link(self):
        """The signed link the person was sent (``portal.decisions.notice_url``)."""
        from .decisions import notice_url

        return notice_url(self)
