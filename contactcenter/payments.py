"""Card payments during a call, with no card number on tape or in our hands (PCI DSS scope).

Twilio Pay, agent-assisted: the operator stays on the call and asks for each part of the
card in turn (number, expiry, security code); the caller keys it on the keypad, Twilio hides
the tones from the operator and the recording, and sends the card to the Pay connector set
up in Twilio's console (``TWILIO_PAY_CONNECTOR``). Its status callbacks tell us the progress,
the result and a token: ``note_status`` keeps those and nothing else.

The recording is paused before the payment opens (no payment while the recording runs: a
pause Twilio refuses refuses the payment), and resumed when the operator completes or cancels
it; both moments are on the call's timeline.

Or by the automated voice (``start_by_ivr``): the operator sends the caller to Twilio's
``<Pay>`` (``telephony`` serves its TwiML); the operator's line and its recording end, nothing
is recorded while the caller keys the card, and when ``<Pay>`` is done the caller hears the
result and is put through to an operator again, recorded anew if their consent allows
(``note_ivr_result``).
"""

import secrets

from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

import twilio_client

from .models import Call, CallEvent, CallPayment
from .services import RecordingControlError, can_control_recording, control_recording

RecordingState = Call.RecordingState
Status = CallPayment.Status
# What the operator may ask the caller for, in order, and Twilio's name of each.
PARTS = {
    "card_number": "payment-card-number",
    "expiration_date": "expiration-date",
    "security_code": "security-code",
}


class PaymentError(Exception):
    """Why a payment step was refused or failed, for the operator; ``status`` is HTTP's."""

    def __init__(self, message, *, status):
        super().__init__(str(message))
        self.message = message
        self.status = status


def enabled():
    return bool(settings.TWILIO_PAY_CONNECTOR)


def _callback_url():
    return settings.PUBLIC_BASE_URL + reverse("twilio-voice-payments")


def open_payment(call):
    return CallPayment.objects.filter(call=call, status=Status.CAPTURING).first()


def start(*, call, by, amount):
    """Pause ``call``'s recording and open a card payment of ``amount`` yen on it."""
    _checked_start(call, by, amount)
    paused = False
    if call.recording_state == RecordingState.RECORDING:
        try:
            control_recording(call=call, action="pause", by=by)
        except RecordingControlError as error:
            raise PaymentError(
                _("The recording could not be paused, so no payment was opened: %(error)s")
                % {"error": error.message},
                status=error.status,
            ) from error
        paused = True
    try:
        sid = twilio_client.start_payment(
            call_sid=call.sid,
            idempotency_key=secrets.token_hex(16),
            status_callback=_callback_url(),
            charge_amount=amount,
            currency="jpy",
            description=f"call {call.sid}",
        )
    except twilio_client.TwilioError as error:
        if paused:
            _resume(call, by)
        raise PaymentError(error.message, status=502) from error
    try:
        with transaction.atomic():
            payment = CallPayment.objects.create(
                call=call, sid=sid, started_by=by, amount=amount, recording_paused=paused
            )
            CallEvent.objects.create(
                call=call,
                kind=CallEvent.Kind.PAYMENT_STARTED,
                actor=by,
                detail=_("%(amount)s yen") % {"amount": f"{amount:,}"},
            )
    except IntegrityError as error:  # a second payment opened at the same moment
        raise PaymentError(_("A payment is already open on this call."), status=409) from error
    return payment


def _checked_start(call, by, amount):
    """The checks every payment passes before it opens (``PaymentError`` otherwise)."""
    if not enabled():
        raise PaymentError(_("Card payments are not set up (TWILIO_PAY_CONNECTOR)."), status=400)
    _require_control(call, by)
    if not isinstance(amount, int) or not 1 <= amount < 1_000_000:
        raise PaymentError(_("Give the amount in yen, from 1 to 999,999."), status=400)
    call.refresh_from_db()
    if call.status != Call.Status.IN_PROGRESS:
        raise PaymentError(_("The call is no longer in progress."), status=409)
    if open_payment(call) is not None:
        raise PaymentError(_("A payment is already open on this call."), status=409)


def start_by_ivr(*, call, by, amount):
    """Send the caller of ``call`` to the automated card payment (Twilio ``<Pay>``) for
    ``amount`` yen; they come back to an operator when it is done."""
    _checked_start(call, by, amount)
    try:
        with transaction.atomic():
            payment = CallPayment.objects.create(
                call=call,
                sid=f"ivr-{secrets.token_hex(12)}",
                started_by=by,
                amount=amount,
                by_ivr=True,
            )
            CallEvent.objects.create(
                call=call,
                kind=CallEvent.Kind.PAYMENT_STARTED,
                actor=by,
                detail=_("%(amount)s yen, by the automated voice") % {"amount": f"{amount:,}"},
            )
    except IntegrityError as error:
        raise PaymentError(_("A payment is already open on this call."), status=409) from error
    url = settings.PUBLIC_BASE_URL + reverse("twilio-voice-pay") + f"?payment={payment.pk}"
    try:
        twilio_client.redirect_call(call_sid=call.sid, url=url)
    except twilio_client.TwilioError as error:
        CallPayment.objects.filter(pk=payment.pk).update(
            status=Status.FAILED, error=str(error.message)[:200], ended_at=timezone.now()
        )
        raise PaymentError(error.message, status=502) from error
    return payment


def ivr_payment(payment_id, *, call_sid):
    """The automated payment ``payment_id`` of the call ``call_sid`` still open, or None."""
    return (
        CallPayment.objects.select_related("call")
        .filter(pk=payment_id, call__sid=call_sid, by_ivr=True, status=Status.CAPTURING)
        .first()
    )


def note_ivr_result(payment, *, result, token="", confirmation="", error=""):
    """Keep what ``<Pay>`` says at its end (the result, a token, a confirmation code) and put
    it on the call's timeline; never a card number, an expiry or a security code."""
    with transaction.atomic():
        updated = CallPayment.objects.filter(pk=payment.pk, status=Status.CAPTURING).update(
            status=_ended_by(result),
            result=result[:64],
            token=token[:200],
            confirmation_code=confirmation[:200],
            error=error[:200],
            ended_at=timezone.now(),
        )
        if updated:
            CallEvent.objects.create(
                call=payment.call, kind=CallEvent.Kind.PAYMENT_ENDED, detail=result[:2000]
            )
    payment.refresh_from_db()
    return payment


def ask_for(*, payment, by, part):
    """Ask the caller to key ``part`` of the card (``PARTS``)."""
    _check(payment, by)
    if part not in PARTS:
        raise PaymentError(_("Unknown part of the card."), status=400)
    try:
        twilio_client.update_payment(
            call_sid=payment.call.sid,
            payment_sid=payment.sid,
            idempotency_key=secrets.token_hex(16),
            status_callback=_callback_url(),
            capture=PARTS[part],
        )
    except twilio_client.TwilioError as error:
        raise PaymentError(error.message, status=502) from error
    CallPayment.objects.filter(pk=payment.pk).update(capturing=PARTS[part])
    payment.refresh_from_db()
    return payment


def finish(*, payment, by, cancel=False):
    """Send the card to the connector (or drop the payment), then resume the recording."""
    _check(payment, by)
    try:
        twilio_client.update_payment(
            call_sid=payment.call.sid,
            payment_sid=payment.sid,
            idempotency_key=secrets.token_hex(16),
            status_callback=_callback_url(),
            status="cancel" if cancel else "complete",
        )
    except twilio_client.TwilioError as error:
        raise PaymentError(error.message, status=502) from error
    ended = Status.CANCELLED if cancel else Status.COMPLETED
    CallPayment.objects.filter(pk=payment.pk, status=Status.CAPTURING).update(
        status=ended, capturing="", ended_at=timezone.now()
    )
    payment.refresh_from_db()
    if payment.recording_paused:
        _resume(payment.call, by)
    return payment


def _require_control(call, by):
    if not can_control_recording(by, call):
        raise PaymentError(
            _("Only the operator on this call or a supervisor can take a payment on it."),
            status=403,
        )


def _ended_by(result):
    """The status a payment ends in for Twilio's ``Result``."""
    return {"success": Status.COMPLETED, "payment-cancelled": Status.CANCELLED}.get(
        result, Status.FAILED
    )


def _check(payment, by):
    _require_control(payment.call, by)
    if payment.status != Status.CAPTURING:
        raise PaymentError(_("This payment has ended."), status=409)


def _resume(call, by):
    """Resume the recording the payment paused (if the call and its recording are still
    there); the timeline says so either way."""
    try:
        control_recording(call=call, action="resume", by=by)
    except RecordingControlError as error:
        detail = str(error.message)
    else:
        detail = ""
    CallEvent.objects.create(
        call=call, kind=CallEvent.Kind.PAYMENT_ENDED, actor=by, detail=detail[:2000]
    )


def note_status(
    *, sid, capture="", required="", partial=False, result="", token="", confirmation="", error=""
):
    """Keep what a payment status callback says of the progress and the result: the parts
    still required, a part keyed, and at the end Twilio's result, token and confirmation
    code. Never a card number, an expiry or a security code (``telephony`` does not even
    read them). An unknown payment is ignored. Calls nothing at Twilio."""
    payment = CallPayment.objects.filter(sid=sid).first()
    if payment is None:
        return None
    changes = {"required": required[:200]}
    if capture and not partial:
        changes["capturing"] = ""  # that part was keyed
    if result:
        changes.update(
            result=result[:64],
            token=token[:200],
            confirmation_code=confirmation[:200],
            error=error[:200],
            ended_at=payment.ended_at or timezone.now(),
        )
        if result != "success":  # a success keeps the status ``finish`` gave it
            changes["status"] = _ended_by(result)
    CallPayment.objects.filter(pk=payment.pk).update(**changes)
    payment.refresh_from_db()
    return payment
