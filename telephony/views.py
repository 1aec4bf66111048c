"""Twilio's webhooks. Only these views are exempt from CSRF: Twilio proves who it is with
``X-Twilio-Signature`` instead, checked here against ``PUBLIC_BASE_URL`` + the path.

A request with a missing or wrong signature gets 403 and changes nothing; the check needs
only the auth token, not the database. A webhook that fails inside still answers valid TwiML:
the caller is connected without recording, even with the database down (``fallback_twiml``).
A status callback that could not be stored answers 503, so that Twilio retries it (the
callback URLs we hand Twilio ask for retries, ``voice.CALLBACK_RETRIES``).
"""

import functools
import logging

from django.conf import settings
from django.http import HttpResponse, HttpResponseForbidden
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import VoiceResponse

from contactcenter import payments
from contactcenter.db import savepoint_if_in_transaction
from contactcenter.models import Call, CallEvent
from contactcenter.proxies import client_address

from . import voice

logger = logging.getLogger(__name__)

TWIML = "text/xml; charset=utf-8"


def signature_problem(request):
    """Why the request is not a genuine Twilio request, or None when it is."""
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature:
        return "missing X-Twilio-Signature"
    # Twilio signs the URL without its fragment (our connection overrides, ``#rc=…``), and
    # a fragment never reaches the server, so the path and query are all there is to sign.
    url = settings.PUBLIC_BASE_URL + request.get_full_path()
    if not RequestValidator(settings.TWILIO_AUTH_TOKEN).validate(url, request.POST, signature):
        return "signature does not match"
    return None


def twilio_webhook(view):
    @csrf_exempt
    @require_POST
    @functools.wraps(view)
    def wrapper(request):
        problem = signature_problem(request)
        if problem:
            logger.warning(
                "Rejected Twilio webhook %s from %s: %s (CallSid %s)",
                request.path,
                client_address(request),
                problem,
                request.POST.get("CallSid", "-"),
            )
            return HttpResponseForbidden("Invalid Twilio signature.", content_type="text/plain")
        return view(request)

    return wrapper


def twiml(body):
    return HttpResponse(body, content_type=TWIML)


def answer_safely(request, answer):
    """Run ``answer``; if it fails, log it with the CallSid and connect without recording."""
    call_sid = request.POST.get("CallSid", "")
    try:
        with savepoint_if_in_transaction():
            return twiml(answer())
    except Exception:
        logger.exception("Webhook %s failed for CallSid %s", request.path, call_sid)
        note_failure(call_sid, request.path)
        return twiml(voice.fallback_twiml())


def note_failure(call_sid, detail):
    """Note on the call that a webhook failed, if the database lets us."""
    try:
        call = Call.objects.filter(sid=call_sid).first()
        if call:
            CallEvent.objects.create(call=call, kind=CallEvent.Kind.WEBHOOK_FAILED, detail=detail)
    except Exception:
        logger.exception("Could not note the failure on call %s", call_sid)


def empty_twiml():
    return twiml(str(VoiceResponse()))


@twilio_webhook
def incoming(request):
    return answer_safely(request, lambda: voice.answer_incoming(request.POST))


@twilio_webhook
def consent(request):
    token = request.headers.get("I-Twilio-Idempotency-Token", "")
    return answer_safely(
        request,
        lambda: voice.answer_consent(request.POST, request.GET, idempotency_token=token),
    )


@twilio_webhook
def fallback(request):
    """Twilio's fallback URL: called when our primary URL failed (an error, a time-out, a
    5xx), with ``ErrorCode`` and ``ErrorUrl``. The same answer as a failing webhook."""
    call_sid = request.POST.get("CallSid", "-")
    logger.error(
        "Twilio fell back for CallSid %s: error %s at %s",
        call_sid,
        request.POST.get("ErrorCode", "-"),
        request.POST.get("ErrorUrl", "-"),
    )
    return twiml(voice.fallback_twiml())


def _apply_or_503(request, apply):
    """Status callbacks need no TwiML. One that could not be stored answers 503, never 200:
    Twilio then retries it (``voice.CALLBACK_RETRIES``) instead of forgetting it."""
    try:
        with savepoint_if_in_transaction():
            apply()
    except Exception:
        logger.exception(
            "Webhook %s failed for CallSid %s: answered 503 for Twilio to retry",
            request.path,
            request.POST.get("CallSid", "-"),
        )
        return HttpResponse(
            "Not stored; retry.",
            status=503,
            content_type="text/plain",
            headers={"Retry-After": "1"},
        )
    return empty_twiml()


@twilio_webhook
def call_status(request):
    return _apply_or_503(request, lambda: voice.apply_call_status(request.POST, request.GET))


@twilio_webhook
def recording_status(request):
    return _apply_or_503(request, lambda: voice.apply_recording_status(request.POST))


# What Twilio may send of a card during a payment: never read, stored or logged (and hidden
# from Django's error reports, should this view ever fail).
CARD_FIELDS = (
    "PaymentCardNumber",
    "ExpirationDate",
    "SecurityCode",
    "PaymentCardPostalCode",
    "BankAccountNumber",
    "BankRoutingNumber",
)


@sensitive_post_parameters(*CARD_FIELDS)
@twilio_webhook
def payment_status(request):
    """Twilio Pay's status callback: the progress and result of a payment on a call, with
    only the fields ``payments.note_status`` takes."""
    form = request.POST
    return _apply_or_503(
        request,
        lambda: payments.note_status(
            sid=form.get("Sid", ""),
            capture=form.get("Capture", ""),
            required=form.get("Required", ""),
            partial=form.get("PartialResult", "") == "true",
            result=form.get("Result", ""),
            token=form.get("PaymentToken", ""),
            confirmation=form.get("PaymentConfirmationCode", ""),
            error=form.get("PaymentError", "") or form.get("ErrorType", ""),
        ),
    )


@sensitive_post_parameters(*CARD_FIELDS)
@twilio_webhook
def pay(request):
    """The automated card payment the operator sent the caller to (``<Pay>``)."""
    return answer_safely(request, lambda: voice.answer_pay(request.POST, request.GET))


@sensitive_post_parameters(*CARD_FIELDS)
@twilio_webhook
def pay_done(request):
    """``<Pay>``'s action URL: the result, then back to an operator."""
    return answer_safely(request, lambda: voice.answer_pay_done(request.POST, request.GET))
