"""Operators, customers and calls: the people and events everything else is about."""

import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connections, models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .phones import CallerIdStatus, format_phone_number, parse_phone_number, read_caller_id
from .transitions import StateMachine

SIP_ADDRESS = re.compile(r"sip:[^@\s]+@[A-Za-z0-9.-]+(:\d+)?(;[^\s]*)?")


class OperatorQuerySet(models.QuerySet):
    def transition(self, pk, *, to, only_from=None, **fields):
        """Move operator ``pk``'s availability to ``to`` if it may become it (and, given
        ``only_from``, is in one of those states); return whether it moved."""
        moved = Operator.AVAILABILITY_TRANSITIONS.apply(
            self.filter(pk=pk), to=to, only_from=only_from, **fields
        )
        return moved == 1


class Operator(models.Model):
    """A person who answers calls. Calls are routed to their phone number or SIP address."""

    class Availability(models.TextChoices):
        AVAILABLE = "available", _("Available")
        ON_CALL = "on_call", _("On a call")
        AWAY = "away", _("Away")
        OFFLINE = "offline", _("Offline")

    # Only an available operator is rung, so only an available one is put on a call; an
    # operator who went away or offline while ringing and answered anyway stays as they said.
    AVAILABILITY_TRANSITIONS = StateMachine(
        "availability",
        {
            Availability.AVAILABLE: {Availability.ON_CALL, Availability.AWAY, Availability.OFFLINE},
            Availability.ON_CALL: {Availability.AVAILABLE, Availability.AWAY, Availability.OFFLINE},
            Availability.AWAY: {Availability.AVAILABLE, Availability.OFFLINE},
            Availability.OFFLINE: {Availability.AVAILABLE, Availability.AWAY},
        },
    )

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.PROTECT,
        related_name="operator",
    )
    display_name = models.CharField(_("display name"), max_length=100)
    routing_address = models.CharField(
        _("routing address"),
        max_length=255,
        help_text=_("Phone number (e.g. 090-1234-5678) or SIP address (sip:name@example.com)."),
    )
    availability = models.CharField(
        _("availability"),
        max_length=16,
        choices=Availability.choices,
        default=Availability.OFFLINE,
        db_index=True,
    )
    recording_acknowledged_at = models.DateTimeField(
        _("recording acknowledged at"),
        null=True,
        blank=True,
        help_text=_("When the operator acknowledged that their calls are recorded."),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    objects = OperatorQuerySet.as_manager()

    class Meta:
        verbose_name = _("operator")
        verbose_name_plural = _("operators")
        ordering = ["display_name"]
        permissions = [
            ("view_other_operators_data", _("Can see every operator's data")),
        ]

    def __str__(self):
        return self.display_name

    def clean(self):
        address = self.routing_address.strip()
        if address.lower().startswith("sip:"):
            if not SIP_ADDRESS.fullmatch(address):
                raise ValidationError(
                    {"routing_address": _("Enter a SIP address like sip:name@example.com.")}
                )
            self.routing_address = address
        else:
            try:
                self.routing_address = parse_phone_number(address)
            except ValidationError as error:
                raise ValidationError({"routing_address": error.messages}) from None

    @property
    def has_acknowledged_recording(self):
        return self.recording_acknowledged_at is not None


class CustomerQuerySet(models.QuerySet):
    def with_number(self, e164):
        """The customer with this E.164 number, or None; asked on every incoming call, so it
        skips the ORM's query building (``contactcenter.db``)."""
        table = connections[self.db].ops.quote_name(self.model._meta.db_table)
        found = self.raw(f"SELECT * FROM {table} WHERE phone_number = %s", [e164])  # noqa: S608
        return next(iter(found), None)

    def for_caller(self, raw_from):
        """The customer behind a call's ``From``, created on first contact.

        A presented number finds the one customer with that number. A withheld or unusable
        caller ID gets a new customer of its own every time: two anonymous callers are not
        the same person, and one of them exercising their rights (deletion, withdrawal of
        consent) must never touch the other's calls. Such a customer exists only through its
        call: create it in the transaction that stores the call, and roll it back if the
        call is not stored, as the Twilio edge does when it registers a call.
        """
        from .db import savepoint_if_in_transaction

        caller = read_caller_id(raw_from)
        if caller.status != CallerIdStatus.PRESENTED:
            return self.create(caller_id_status=caller.status)
        customer = self.with_number(caller.e164)
        if customer:
            return customer
        try:
            with savepoint_if_in_transaction():
                return self.create(phone_number=caller.e164)
        except IntegrityError:
            # Two first calls from one number at the same instant: the other one won.
            return self.get(phone_number=caller.e164)


class Customer(models.Model):
    """A caller, known by the number they call from (E.164), or anonymous if withheld."""

    phone_number = models.CharField(
        _("phone number"), max_length=16, unique=True, null=True, blank=True
    )
    caller_id_status = models.CharField(
        _("caller ID"),
        max_length=16,
        choices=CallerIdStatus.choices,
        default=CallerIdStatus.PRESENTED,
    )
    name = models.CharField(_("name"), max_length=100, blank=True)
    recording_opted_out = models.BooleanField(
        _("asked not to be recorded"),
        default=False,
        editable=False,
        help_text=_(
            "Follows the consent ledger: on when the customer's latest standing answer is a "
            "refusal or a withdrawal. Read on every incoming call, so the ledger is not."
        ),
    )
    # APPI art. 35(3),(5): set when the customer's request to stop third-party provision is
    # granted; recordings.provision refuses to hand over their data from then on.
    provision_stopped_at = models.DateTimeField(
        _("third-party provision stopped at"),
        null=True,
        blank=True,
        editable=False,
        help_text=_(
            "Set when the customer's request to stop provision to third parties was granted: "
            "nothing about them is handed to a third party from then on."
        ),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    objects = CustomerQuerySet.as_manager()

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(caller_id_status=CallerIdStatus.PRESENTED, phone_number__isnull=False)
                    | (
                        ~models.Q(caller_id_status=CallerIdStatus.PRESENTED)
                        & models.Q(phone_number__isnull=True)
                    )
                ),
                name="customer_number_matches_caller_id",
                violation_error_message=_(
                    "A customer has a phone number exactly when their number was presented."
                ),
            ),
        ]

    def __str__(self):
        if self.phone_number:
            return self.formatted_phone_number
        return _("%(status)s caller #%(id)s") % {
            "status": self.get_caller_id_status_display(),
            "id": self.pk,
        }

    def clean(self):
        if self.phone_number:
            try:
                self.phone_number = parse_phone_number(self.phone_number)
            except ValidationError as error:
                raise ValidationError({"phone_number": error.messages}) from None
            self.caller_id_status = CallerIdStatus.PRESENTED
        elif self.caller_id_status == CallerIdStatus.PRESENTED:
            raise ValidationError({"phone_number": _("Enter the customer's phone number.")})
        else:
            self.phone_number = None

    @property
    def formatted_phone_number(self):
        return format_phone_number(self.phone_number)


class CallQuerySet(models.QuerySet):
    def handled_by(self, user):
        """``user``'s own calls: those they are the operator of (see ``Call.is_handled_by``)."""
        if not user.is_authenticated:
            return self.none()
        # The operator's key as a scalar subquery, not a join: the planner then reads the
        # (operator, started_at) index, instead of every call filtered by a joined column.
        operator = Operator.objects.filter(user_id=user.pk).values("pk")[:1]
        return self.filter(operator_id=models.Subquery(operator))

    def transition_recording_state(self, pk, *, to, only_from=None, **fields):
        """Move call ``pk``'s recording state to ``to`` if it may become it (and, given
        ``only_from``, is in one of those states); return whether it moved."""
        moved = Call.RECORDING_STATE_TRANSITIONS.apply(
            self.filter(pk=pk), to=to, only_from=only_from, **fields
        )
        return moved == 1

    def apply_status(self, *, sid, status, sequence_number, timestamp=None, duration=None):
        """Apply one Twilio status callback in a single conditional UPDATE; return whether it
        moved the call's status.

        Callbacks are separate requests and may arrive late, twice or out of order. The status
        moves only when the callback's SequenceNumber is newer than the last one applied and
        the call's current status may become the reported one (``Call.STATUS_TRANSITIONS``),
        so a late, repeated or shuffled callback never moves it back, and two arriving at once
        cannot both win. What a callback tells is kept all the same, in whatever order it
        arrives: the answer time is the first ``in-progress`` one known, even one arriving
        after ``completed``; a final status that moves the call gives its end time and
        ``CallDuration``, and one that does not fills them only where the call has none.
        ``started_at`` stays when we first saw the call: no callback carries the call's start
        (``Timestamp`` is the event's), and consent is judged against it.

        The answer time is not derived from the end time and ``CallDuration``: Twilio
        documents the duration as "the length of the call", not as time since the answer.

        Written as SQL because every status callback of every call runs it (see
        ``contactcenter.db``); the statement is the same on PostgreSQL and SQLite. Every
        ``SET`` expression reads the row as it was before the statement, so ``moves`` is the
        same test in each.
        """
        if status not in Call.Status.values:
            raise ValueError(f"unknown call status {status!r}")
        connection = connections[self.db]
        when = connection.ops.adapt_datetimefield_value
        may_become = Call.statuses_that_may_become(status)
        params = {
            "sid": sid,
            "status": status,
            "sequence_number": sequence_number,
            "at": when(timestamp or timezone.now()),
            "now": when(timezone.now()),
            "duration": duration,
            **{f"from_{index}": value for index, value in enumerate(may_become)},
        }
        moves = (
            f"(status IN ({', '.join(f'%(from_{index})s' for index in range(len(may_become)))}) "
            "AND (last_sequence_number IS NULL OR last_sequence_number < %(sequence_number)s))"
        )
        assignments = [
            f"status = CASE WHEN {moves} THEN %(status)s ELSE status END",
            f"last_sequence_number = CASE WHEN {moves} THEN %(sequence_number)s "
            "ELSE last_sequence_number END",
            "updated_at = %(now)s",
        ]
        # What a callback can tell about a call even when it does not move it: a value the
        # call does not have yet.
        gaps = []
        if status == Call.Status.IN_PROGRESS:
            assignments.append("answered_at = COALESCE(answered_at, %(at)s)")
            gaps.append("answered_at IS NULL")
        if status in Call.FINAL_STATUSES:
            assignments.append(
                f"ended_at = CASE WHEN {moves} THEN %(at)s ELSE COALESCE(ended_at, %(at)s) END"
            )
            gaps.append("ended_at IS NULL")
            if duration is not None:
                assignments.append(
                    f"duration = CASE WHEN {moves} THEN %(duration)s "
                    "ELSE COALESCE(duration, %(duration)s) END"
                )
                gaps.append("duration IS NULL")
        condition = moves
        if gaps:
            # A repeat of the callback last applied (its SequenceNumber) has nothing to add,
            # and leaves the row alone.
            condition = (
                f"({moves} OR (({' OR '.join(gaps)}) AND (last_sequence_number IS NULL "
                "OR last_sequence_number <> %(sequence_number)s)))"
            )
        # Only column names and placeholders are formatted in; every value is a parameter.
        sql = (
            f"UPDATE {connection.ops.quote_name(Call._meta.db_table)} "  # noqa: S608
            f"SET {', '.join(assignments)} "
            f"WHERE sid = %(sid)s AND {condition} "
            "RETURNING last_sequence_number"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
        # It moved exactly when the row now carries this callback's SequenceNumber: a row
        # that only had a gap filled keeps another one (see the condition above).
        return row is not None and row[0] == sequence_number


class Call(models.Model):
    """One Twilio call leg, identified by its CallSid."""

    class Direction(models.TextChoices):
        INBOUND = "inbound", _("Inbound")
        OUTBOUND_API = "outbound-api", _("Outbound (API)")
        OUTBOUND_DIAL = "outbound-dial", _("Outbound (dialled)")

    class Status(models.TextChoices):
        # Twilio's CallStatus values, in the order a call moves through them.
        QUEUED = "queued", _("Queued")
        INITIATED = "initiated", _("Initiated")
        RINGING = "ringing", _("Ringing")
        IN_PROGRESS = "in-progress", _("In progress")
        COMPLETED = "completed", _("Completed")
        BUSY = "busy", _("Busy")
        NO_ANSWER = "no-answer", _("No answer")
        CANCELED = "canceled", _("Canceled")
        FAILED = "failed", _("Failed")

    class RecordingState(models.TextChoices):
        NOT_RECORDED = "not_recorded", _("Not recorded")
        REQUESTED = "requested", _("Requested from Twilio")
        RECORDING = "recording", _("Recording")
        PAUSED = "paused", _("Paused")
        STOPPED = "stopped", _("Stopped")

    FINAL_STATUSES = frozenset(
        {Status.COMPLETED, Status.BUSY, Status.NO_ANSWER, Status.CANCELED, Status.FAILED}
    )
    # A call never moves backwards (``ringing`` after ``in-progress``) and a finished call
    # stays finished; the same status again is allowed (a newer callback repeating it).
    STATUS_TRANSITIONS = StateMachine(
        "status",
        {
            Status.QUEUED: {
                Status.QUEUED,
                Status.INITIATED,
                Status.RINGING,
                Status.IN_PROGRESS,
                *FINAL_STATUSES,
            },
            Status.INITIATED: {
                Status.INITIATED,
                Status.RINGING,
                Status.IN_PROGRESS,
                *FINAL_STATUSES,
            },
            Status.RINGING: {Status.RINGING, Status.IN_PROGRESS, *FINAL_STATUSES},
            Status.IN_PROGRESS: {Status.IN_PROGRESS, *FINAL_STATUSES},
            **dict.fromkeys(FINAL_STATUSES, ()),
        },
    )
    # Asked for in the ``<Dial>``; running once Twilio says so, or absent (no audio); paused,
    # resumed and stopped by the operator. A stopped recording is not started again, and
    # Twilio's late callbacks do not undo what the operator did.
    RECORDING_STATE_TRANSITIONS = StateMachine(
        "recording_state",
        {
            RecordingState.NOT_RECORDED: {RecordingState.REQUESTED},
            RecordingState.REQUESTED: {
                RecordingState.RECORDING,
                RecordingState.PAUSED,
                RecordingState.STOPPED,
                RecordingState.NOT_RECORDED,
            },
            RecordingState.RECORDING: {
                RecordingState.PAUSED,
                RecordingState.STOPPED,
                RecordingState.NOT_RECORDED,
            },
            RecordingState.PAUSED: {RecordingState.RECORDING, RecordingState.STOPPED},
            RecordingState.STOPPED: (),
        },
    )

    sid = models.CharField(_("call SID"), max_length=34, unique=True)
    direction = models.CharField(
        _("direction"), max_length=16, choices=Direction.choices, default=Direction.INBOUND
    )
    from_number = models.CharField(_("from"), max_length=64, blank=True)
    to_number = models.CharField(_("to"), max_length=64, blank=True)
    customer = models.ForeignKey(
        Customer,
        verbose_name=_("customer"),
        on_delete=models.PROTECT,
        related_name="calls",
        null=True,
        blank=True,
    )
    operator = models.ForeignKey(
        Operator,
        verbose_name=_("operator"),
        on_delete=models.PROTECT,
        related_name="calls",
        null=True,
        blank=True,
    )
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.RINGING
    )
    started_at = models.DateTimeField(_("started at"), default=timezone.now)
    answered_at = models.DateTimeField(_("answered at"), null=True, blank=True)
    ended_at = models.DateTimeField(_("ended at"), null=True, blank=True)
    duration = models.PositiveIntegerField(_("duration (seconds)"), null=True, blank=True)
    recording_state = models.CharField(
        _("recording"),
        max_length=16,
        choices=RecordingState.choices,
        default=RecordingState.NOT_RECORDED,
    )
    language = models.CharField(
        _("caller's language"),
        max_length=8,
        default="ja",
        help_text=_("The language the caller heard the announcement in."),
    )
    missed = models.BooleanField(
        _("missed"),
        default=False,
        db_index=True,
        help_text=_("No operator was available to take the call."),
    )
    card_pause_until = models.DateTimeField(
        _("paused for a card number until"),
        null=True,
        blank=True,
        help_text=_("The recording resumes by itself then, unless the operator resumes it first."),
    )
    card_data_suspected_at = models.DateTimeField(
        _("may contain card data since"),
        null=True,
        blank=True,
        help_text=_(
            "A card number may have been recorded (a pause that failed or was missed): the "
            "recording is kept only as long as its shortest purpose allows."
        ),
    )
    card_data_note = models.TextField(_("why it may contain card data"), blank=True)
    last_sequence_number = models.IntegerField(
        _("last status sequence number"),
        null=True,
        blank=True,
        help_text=_("Twilio's SequenceNumber of the last status callback applied."),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    objects = CallQuerySet.as_manager()

    class Meta:
        verbose_name = _("call")
        verbose_name_plural = _("calls")
        ordering = ["-started_at"]
        permissions = [
            ("control_any_recording", _("Can pause, resume or stop the recording of any call")),
        ]
        indexes = [
            models.Index(fields=["-started_at"], name="call_started_idx"),
            models.Index(fields=["operator", "-started_at"], name="call_operator_started_idx"),
            models.Index(fields=["customer", "-started_at"], name="call_customer_started_idx"),
            models.Index(fields=["status"], name="call_status_idx"),
            # The list's direction filter: outbound calls are few, and found without a scan.
            models.Index(fields=["direction", "-started_at"], name="call_direction_started_idx"),
            # The few calls that may hold card data (the recordings list's filter, incidents).
            models.Index(
                fields=["-started_at"],
                name="call_card_data_idx",
                condition=models.Q(card_data_suspected_at__isnull=False),
            ),
        ]

    def __str__(self):
        return self.sid

    @property
    def is_finished(self):
        return self.status in self.FINAL_STATUSES

    @property
    def card_pause_seconds_left(self):
        """Seconds until a pause for a card number ends by itself (0 when it is due)."""
        if self.card_pause_until is None:
            return 0
        return max(0, int((self.card_pause_until - timezone.now()).total_seconds()))

    def is_handled_by(self, user):
        """Is this ``user``'s own call (they are its operator)? The one rule for "own call"."""
        return (
            user.is_authenticated
            and self.operator_id is not None
            and self.operator.user_id == user.pk
        )

    @classmethod
    def statuses_that_may_become(cls, status):
        """The statuses a call may be in for a callback reporting ``status`` to apply."""
        return sorted(cls.STATUS_TRANSITIONS.predecessors(status))


class CallEvent(models.Model):
    """One entry on a call's timeline: who did what to the call or its recording, and when."""

    class Kind(models.TextChoices):
        RECORDING_PAUSED = "recording_paused", _("Recording paused")
        RECORDING_RESUMED = "recording_resumed", _("Recording resumed")
        RECORDING_STOPPED = "recording_stopped", _("Recording stopped")
        RECORDING_CONTROL_FAILED = "recording_control_failed", _("Recording control failed")
        CARD_PAUSE = "card_pause", _("Recording paused for a card number")
        CARD_PAUSE_ENDED = "card_pause_ended", _("Recording resumed after the card number")
        CARD_DATA_MARKED = "card_data_marked", _("Marked: the recording may contain card data")
        PAYMENT_STARTED = "payment_started", _("Card payment started; recording paused")
        PAYMENT_ENDED = "payment_ended", _("Card payment ended; recording resumed")
        OPERATOR_ANSWERED = "operator_answered", _("Operator answered")
        NO_OPERATOR = "no_operator", _("No operator available")
        WEBHOOK_FAILED = "webhook_failed", _("Webhook failed; caller connected without recording")

    call = models.ForeignKey(
        Call, verbose_name=_("call"), on_delete=models.CASCADE, related_name="events"
    )
    kind = models.CharField(_("event"), max_length=32, choices=Kind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("by"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    detail = models.TextField(_("detail"), blank=True)
    at = models.DateTimeField(_("at"), default=timezone.now)

    class Meta:
        verbose_name = _("call event")
        verbose_name_plural = _("call events")
        ordering = ["at", "pk"]
        indexes = [models.Index(fields=["call", "at"], name="callevent_call_at_idx")]

    def __str__(self):
        return f"{self.get_kind_display()} ({timezone.localtime(self.at):%Y-%m-%d %H:%M:%S})"


class CallPayment(models.Model):
    """A card payment taken during a call with Twilio Pay (agent-assisted): the caller keys
    the card on the keypad, Twilio hides the tones from the operator and sends the card to the
    Pay connector. Only what Twilio tells us of the result is kept: never a card number, an
    expiry date or a security code, masked or not."""

    class Status(models.TextChoices):
        CAPTURING = "capturing", _("Capturing")
        COMPLETED = "completed", _("Completed")
        CANCELLED = "cancelled", _("Cancelled")
        FAILED = "failed", _("Failed")

    ENDED = (Status.COMPLETED, Status.CANCELLED, Status.FAILED)

    call = models.ForeignKey(
        Call, verbose_name=_("call"), on_delete=models.CASCADE, related_name="payments"
    )
    sid = models.CharField(_("payment SID"), max_length=34, unique=True)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("started by"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    amount = models.PositiveIntegerField(_("amount (yen)"))
    status = models.CharField(
        _("status"), max_length=12, choices=Status.choices, default=Status.CAPTURING
    )
    capturing = models.CharField(_("asking for"), max_length=32, blank=True)
    required = models.CharField(_("still required"), max_length=200, blank=True)
    result = models.CharField(_("result at Twilio"), max_length=64, blank=True)
    token = models.CharField(_("payment token"), max_length=200, blank=True)
    confirmation_code = models.CharField(_("confirmation code"), max_length=200, blank=True)
    error = models.CharField(_("error"), max_length=200, blank=True)
    recording_paused = models.BooleanField(_("recording paused for it"), default=False)
    by_ivr = models.BooleanField(
        _("taken by the automated voice (IVR)"),
        default=False,
        help_text=_(
            "The caller was sent from the operator to Twilio's <Pay>: the operator's line and "
            "its recording ended, and the caller was put back through to an operator after."
        ),
    )
    started_at = models.DateTimeField(_("started at"), default=timezone.now)
    ended_at = models.DateTimeField(_("ended at"), null=True, blank=True)

    class Meta:
        verbose_name = _("card payment")
        verbose_name_plural = _("card payments")
        ordering = ["-started_at", "-pk"]
        constraints = [
            # One payment at a time on a call.
            models.UniqueConstraint(
                fields=["call"],
                condition=models.Q(status="capturing"),
                name="callpayment_one_open_per_call",
            )
        ]

    def __str__(self):
        return f"{self.sid} ({self.get_status_display()})"
