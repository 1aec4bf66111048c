"""The two questions every other part asks of the consent ledger, and how records are added.

* ``may_record(call=…)`` — may this call be recorded (or its recording kept and used), and
  for which purposes? Asked where recording starts, where media is ingested, and before use.
* ``usable_purposes(call=…)`` — which of those purposes may a recording be used for now?
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from contactcenter.models import Customer, Operator
from privacy.models import Notice, NoticePurpose, Purpose

from .models import ConsentRecord

Decision = ConsentRecord.Decision
NOT_GIVEN = (Decision.REFUSED, Decision.WITHDRAWN)


# --- adding records ------------------------------------------------------------------------


def record_consent(
    *,
    party_role,
    decision,
    method,
    customer=None,
    operator=None,
    call=None,
    notice=None,
    announcement_text="",
    digits="",
    recorded_by=None,
    recorded_by_system="",
    source_request=None,
    note="",
    at=None,
):
    """Append one decision to the ledger and return it.

    A grant or refusal is tied to the notice in force at ``at`` unless ``notice`` says which
    one was announced; the announcement text is kept with its SHA-256 as evidence.

    The ledger only records: stopping the use of recordings a refusal or withdrawal no longer
    covers is the recording pipeline's (``recordings.retention.withdraw_consent`` does both).
    """
    at = at or timezone.now()
    if notice is None and decision != Decision.WITHDRAWN:
        notice = Notice.objects.in_force(at)
    with transaction.atomic():
        record = ConsentRecord.objects.create(
            customer=customer,
            operator=operator,
            call=call,
            party_role=party_role,
            decision=decision,
            method=method,
            notice=notice,
            announcement_text=announcement_text,
            digits=digits,
            recorded_by=recorded_by,
            recorded_by_system=recorded_by_system,
            source_request=source_request or {},
            note=note,
            recorded_at=at,
        )
        if customer is not None and call is None:
            _follow_standing_answer(customer)
    return record


def _follow_standing_answer(customer):
    """Copy the customer's standing answer from the ledger to ``Customer.recording_opted_out``.

    Read back from the ledger rather than taken from the new record, so that a record dated
    in the past cannot override a newer one.
    """
    opted_out = has_opted_out(customer)
    Customer.objects.filter(pk=customer.pk).update(recording_opted_out=opted_out)
    customer.recording_opted_out = opted_out


def acknowledge_recording(*, operator, by, method=ConsentRecord.Method.WEB_FORM, at=None):
    """Record an operator's standing consent to having their calls recorded.

    Idempotent: an operator whose standing consent is already in effect gets their existing
    record back and nothing new is written.
    """
    with transaction.atomic():
        operator = Operator.objects.select_for_update().get(pk=operator.pk)
        latest = latest_standing_record(operator=operator)
        if latest and latest.decision == Decision.GRANTED:
            return latest
        at = at or timezone.now()
        record = record_consent(
            operator=operator,
            party_role=ConsentRecord.PartyRole.OPERATOR,
            decision=Decision.GRANTED,
            method=method,
            recorded_by=by,
            at=at,
        )
        Operator.objects.filter(pk=operator.pk).update(recording_acknowledged_at=at)
    return record


def withdraw_consent(
    *, customer, by=None, method=ConsentRecord.Method.STAFF_ENTRY, note="", at=None
):
    """Record that a customer withdraws their consent to recording, for every call.

    From then on ``may_record`` answers no for every call of theirs, past and future, and the
    next call tells them at the start that it will not be recorded.
    """
    return record_consent(
        customer=customer,
        party_role=ConsentRecord.PartyRole.CALLER,
        decision=Decision.WITHDRAWN,
        method=method,
        recorded_by=by,
        note=note,
        at=at,
    )


# --- reading the ledger --------------------------------------------------------------------


def latest_standing_record(*, customer=None, operator=None):
    """The newest record of a subject that is not about one call."""
    subject = Q(customer=customer) if customer is not None else Q(operator=operator)
    return (
        ConsentRecord.objects.filter(subject, call__isnull=True)
        .order_by("-recorded_at", "-pk")
        .first()
    )


def has_opted_out(customer):
    """Whether the customer's standing answer is no (withdrawn, or refused for every call).

    Asked of the ledger itself. ``Customer.recording_opted_out`` holds the same answer for the
    incoming-call webhook, which must not spend a query on it.
    """
    latest = latest_standing_record(customer=customer)
    return latest is not None and latest.decision in NOT_GIVEN


def has_standing_consent(operator, *, at=None):
    """Whether the operator's standing consent is in effect now and, given ``at``, was then.

    Each is the operator's newest standing record up to that moment being a grant, so a
    withdrawal in force at ``at`` counts even if the operator acknowledged again later.
    """
    latest = latest_standing_record(operator=operator)
    if latest is None or latest.decision != Decision.GRANTED:
        return False
    if at is None:
        return True
    then = (
        ConsentRecord.objects.filter(operator=operator, call__isnull=True, recorded_at__lte=at)
        .order_by("-recorded_at", "-pk")
        .first()
    )
    return then is not None and then.decision == Decision.GRANTED


@dataclass(frozen=True)
class RecordingPermission:
    """The answer to "may this call be recorded, and for which purposes?"."""

    allowed: bool
    reason: str
    notice: Notice | None = None
    purposes: tuple = field(default=())

    REASONS = {
        "granted": _("Every party consented."),
        "no_customer": _("The caller is not known, so their consent cannot be checked."),
        "no_consent": _("The caller has not consented for this call."),
        "refused": _("The caller refused recording."),
        "withdrawn": _("The caller withdrew consent."),
        "opted_out": _("The customer has asked not to be recorded."),
        "operator_without_consent": _("The operator has not acknowledged that calls are recorded."),
    }

    def __bool__(self):
        return self.allowed

    @property
    def message(self):
        return self.REASONS[self.reason]


def _refuse(reason):
    return RecordingPermission(allowed=False, reason=reason)


def may_record(*, call):
    """May ``call`` be recorded — or its recording kept and used — and for which purposes?

    Yes only when every party granted and nobody took it back: the customer granted for this
    call and has neither withdrawn nor refused since (for this call or for all calls), the
    customer has not opted out, and the operator on the call had standing consent when the
    call started and still has. The purposes are those of the notice announced when the
    customer consented, with the usable days that notice promised.
    """
    if call.customer_id is None:
        return _refuse("no_customer")
    customer = call.customer
    if has_opted_out(customer):
        return _refuse("opted_out")
    for_call = ConsentRecord.objects.filter(customer=customer, call=call).order_by(
        "-recorded_at", "-pk"
    )
    latest = for_call.first()
    if latest is None:
        return _refuse("no_consent")
    if latest.decision != Decision.GRANTED:
        return _refuse("refused" if latest.decision == Decision.REFUSED else "withdrawn")
    withdrawn_since = ConsentRecord.objects.filter(
        customer=customer,
        call__isnull=True,
        decision__in=NOT_GIVEN,
        recorded_at__gte=latest.recorded_at,
    ).exists()
    if withdrawn_since:
        return _refuse("withdrawn")
    if call.operator_id is not None and not has_standing_consent(call.operator, at=call.started_at):
        return _refuse("operator_without_consent")
    purposes = ()
    if latest.notice_id:
        purposes = tuple(
            NoticePurpose.objects.filter(notice_id=latest.notice_id).select_related("purpose")
        )
    return RecordingPermission(
        allowed=True, reason="granted", notice=latest.notice, purposes=purposes
    )


@dataclass(frozen=True)
class UsablePurpose:
    purpose: Purpose
    usable_until: datetime
    allows_training_review: bool


def usable_purposes(*, call, at=None):
    """The purposes a recording of ``call`` may be used for at ``at`` (default now).

    Each announced purpose has its own window: the days its notice promised, counted from the
    start of the call. Nothing is usable when ``may_record`` says no.
    """
    at = at or timezone.now()
    permission = may_record(call=call)
    if not permission:
        return []
    usable = []
    for announced in permission.purposes:
        until = call.started_at + timedelta(days=announced.days)
        if at < until:
            usable.append(UsablePurpose(announced.purpose, until, announced.training))
    return usable
