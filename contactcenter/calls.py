"""A call's life outside its webhooks: registering one first heard of from Twilio's REST API,
closing one whose end was never told, and making its operator available again.

The webhooks (``telephony``) and the reconciliation with Twilio (``recordings.reconcile``)
both use these, so that a call ends the same way whoever learns of its end.
"""

from django.db.models import Exists, F, OuterRef
from django.db.models.functions import Coalesce

from .db import insert_unless_exists
from .models import Call, Customer, Operator


def register_twilio_call(*, sid, direction, from_number, to_number, started_at=None):
    """Store a call we never saw ring, from Twilio's call resource; return it.

    The same INSERT as an incoming call's (``telephony.voice.register_call``): a call that
    exists meanwhile is left alone. Its customer is found (or created) from ``from_number``
    exactly as on an incoming call; an anonymous one is created only if the call is new.
    """
    existing = Call.objects.filter(sid=sid).first()
    if existing:
        return existing
    if direction not in Call.Direction.values:
        direction = Call.Direction.INBOUND
    call = Call(
        sid=sid,
        direction=direction,
        from_number=(from_number or "")[:64],
        to_number=(to_number or "")[:64],
        customer=Customer.objects.for_caller(from_number),
        status=Call.Status.RINGING,
    )
    if started_at is not None:
        call.started_at = started_at
    insert_unless_exists(call, unique_field="sid")
    return Call.objects.get(sid=sid)


def close_call(call, *, status, started_at=None, ended_at=None, duration=None):
    """End ``call`` in ``status`` (a final one) with Twilio's times, if it is still open;
    release its operator; return whether it was closed.

    Through the call status transition, so a call a callback finished meanwhile is left as
    that callback wrote it. A call Twilio says lasted some seconds was answered at its start
    (kept if a callback told us earlier).
    """
    if status not in Call.FINAL_STATUSES:
        raise ValueError(f"{status!r} does not end a call")
    fields = {"ended_at": ended_at or F("ended_at")}
    if duration is not None:
        fields["duration"] = duration
    if started_at is not None and duration:
        fields["answered_at"] = Coalesce(F("answered_at"), started_at)
    closed = Call.STATUS_TRANSITIONS.apply(Call.objects.filter(pk=call.pk), to=status, **fields)
    if closed:
        call.refresh_from_db()
        release_operator(call)
    return bool(closed)


def release_operator(call):
    """Make the operator of ``call``, which ended, available again: only if they are still on
    a call (one who went away meanwhile stays away) and took no newer call since (the end of
    a call is told twice, by their leg and by the customer's call, and either may be late)."""
    if call.operator_id is None:
        return False
    newer = Call.objects.filter(operator=OuterRef("pk"), pk__gt=call.pk)
    return Operator.objects.filter(~Exists(newer)).transition(
        call.operator_id,
        to=Operator.Availability.AVAILABLE,
        only_from={Operator.Availability.ON_CALL},
    )
