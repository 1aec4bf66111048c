"""A call from ring to hang-up: the announcement, the consent question, routing, status.

Each function answers one Twilio webhook and returns TwiML. None of them calls Twilio: a
webhook must answer well within Twilio's 15-second limit, and the caller is waiting.
Recording is asked for only in the ``<Dial>`` of a call that ``may_record`` allows, so a
call without consent never carries a recording attribute at all.
"""

import functools
import logging
import time
from datetime import UTC
from email.utils import parsedate_to_datetime
from urllib.parse import urlencode

from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from twilio.twiml.voice_response import Gather, VoiceResponse

from consent.models import ConsentRecord
from consent.services import has_standing_consent, may_record, record_consent
from contactcenter import payments
from contactcenter.calls import release_operator
from contactcenter.db import insert_unless_exists, savepoint_if_in_transaction
from contactcenter.models import Call, CallEvent, Customer, Operator
from contactcenter.phones import CallerIdStatus, read_caller_id
from privacy.services import notice_in_force, published_notice
from recordings.ingest import note_recording_status
from recordings.models import Recording
from recordings.retention import forget_without_consent

logger = logging.getLogger(__name__)

AGREE, REFUSE, ENGLISH = "1", "2", "9"
PROMPT_ATTEMPTS = 2  # ask once more when there is no answer, then treat it as not agreed
GATHER_TIMEOUT_SECONDS = 6
DIAL_TIMEOUT_SECONDS = 25
VOICES = {"ja": "ja-JP", "en": "en-US"}

QUESTION = {
    "ja": "録音に同意いただける場合は1を、同意いただけない場合は2を、押してください。",
    "en": "To agree to recording, press 1. If you do not agree, press 2.",
}
ENGLISH_OFFER = "For English, press 9."
ASK_AGAIN = {
    "ja": "ボタンの操作が確認できませんでした。もう一度お伺いします。",
    "en": "We did not receive your answer. Let us ask once more.",
}
NOT_RECORDED = {
    "ja": "このお電話は録音いたしません。担当者におつなぎします。",
    "en": "This call will not be recorded. We will connect you now.",
}
OPTED_OUT = {
    "ja": "お客様のお申し出により、このお電話は録音いたしません。担当者におつなぎします。",
    "en": "As you asked, this call will not be recorded. We will connect you now.",
}
CONNECTING = {
    "ja": "ありがとうございます。担当者におつなぎします。",
    "en": "Thank you. We will connect you now.",
}
NO_OPERATOR = {
    "ja": "申し訳ございません。ただいま電話が大変混み合っております。"
    "恐れ入りますが、しばらくたってからおかけ直しください。",
    "en": "We are sorry, all our operators are busy. Please call again later.",
}


# Twilio's connection overrides, a URL fragment (``#rc=…``): Twilio reads them and strips the
# fragment before it calls (and signs) the URL. By default it retries only a refused
# connection, once; a callback answered 5xx (it could not be stored) must be retried.
# - a status callback: nobody waits, so retry every failure Twilio can, within its 15 s;
# - the consent answer: the caller waits, so retry only what failed before any work was done
#   (no connection, or a 5xx from a proxy), quickly.
CALLBACK_RETRIES = "ct=2000&rt=5000&tt=15000&rc=5&rp=5xx,ct,rt"
ANSWER_RETRIES = "ct=2000&rc=2&rp=ct,5xx"


def public_url(name, *, retries="", **query):
    """Absolute URL of one of our webhooks, as Twilio must call it (and as it is signed),
    with Twilio's connection overrides ``retries`` as its fragment."""
    url = settings.PUBLIC_BASE_URL + reverse(name)
    if query:
        url = f"{url}?{urlencode(query)}"
    return f"{url}#{retries}" if retries else url


def say(response, text, language):
    response.say(text, language=VOICES[language])


# --- the incoming call ---------------------------------------------------------------------


def register_call(params):
    """Store the call on first sight with its customer, and return the call's customer.

    One INSERT that a retried webhook (or two copies of one request at the same instant)
    leaves alone, so there is never a second call. A withheld number's customer is new on
    every call, so it is created in the call's own transaction with the call's unique SID
    as the arbiter: of two copies at the same instant one stores the call, and the other's
    customer is rolled back with its empty INSERT instead of being left without a call.
    """
    sid = params.get("CallSid", "")
    caller = read_caller_id(params.get("From"))
    if caller.status == CallerIdStatus.PRESENTED:
        customer = Customer.objects.for_caller(params.get("From"))
        insert_unless_exists(_new_call(params, customer), unique_field="sid")
        return customer
    # A retry that comes after the first request finished costs no customer at all.
    existing = Call.objects.filter(sid=sid).select_related("customer").first()
    if existing:
        return existing.customer
    with transaction.atomic():
        customer = Customer.objects.for_caller(params.get("From"))
        if insert_unless_exists(_new_call(params, customer), unique_field="sid"):
            return customer
        transaction.set_rollback(True)
    return Call.objects.select_related("customer").get(sid=sid).customer


def _new_call(params, customer):
    return Call(
        sid=params.get("CallSid", ""),
        direction=params.get("Direction") or Call.Direction.INBOUND,
        from_number=params.get("From", "")[:64],
        to_number=params.get("To", "")[:64],
        customer=customer,
        status=Call.Status.RINGING,
    )


def find_or_create_call(params):
    """The stored Call for this CallSid, registered first if this is its first webhook."""
    sid = params.get("CallSid", "")
    call = Call.objects.filter(sid=sid).select_related("customer").first()
    if call is None:
        register_call(params)
        call = Call.objects.select_related("customer").get(sid=sid)
    return call


def answer_incoming(params):
    """The first TwiML of a call: the announcement and the consent question.

    A customer who withdrew consent is told the call will not be recorded and is connected
    without a question. Without a published notice nothing can be announced, so the call is
    connected without recording.
    """
    customer = register_call(params)
    if customer is not None and customer.recording_opted_out:
        response = VoiceResponse()
        say(response, OPTED_OUT["ja"], "ja")
        return connect(find_or_create_call(params), response, record=False, language="ja")
    notice = notice_in_force()
    if notice is None:
        logger.warning(
            "No notice in force: call %s connected without recording", params.get("CallSid")
        )
        return connect(find_or_create_call(params), VoiceResponse(), record=False, language="ja")
    return ask_for_consent(notice, language="ja", attempt=1)


def spoken_announcement(notice, language):
    """Exactly what the caller hears before answering: kept as evidence with the consent."""
    return f"{notice.announcement(language)}\n{QUESTION[language]}"


def ask_for_consent(notice, *, language, attempt, again=False):
    return _consent_prompt(
        notice.version,
        notice.announcement(language),
        language=language,
        attempt=attempt,
        again=again,
        base_url=settings.PUBLIC_BASE_URL,
    )


@functools.lru_cache(maxsize=64)
def _consent_prompt(version, announcement, *, language, attempt, again, base_url):
    """The same inputs always give the same TwiML, so it is built once and reused.

    Every argument it depends on is in the key, the announcement's text included, so an
    edited or newly published notice can never be answered with an old prompt.
    """
    response = VoiceResponse()
    query = {"notice": version, "lang": language, "attempt": attempt}
    gather = Gather(
        input="dtmf",
        num_digits=1,
        timeout=GATHER_TIMEOUT_SECONDS,
        action=public_url("twilio-voice-consent", retries=ANSWER_RETRIES, **query),
        method="POST",
    )
    if again:
        gather.say(ASK_AGAIN[language], language=VOICES[language])
    gather.say(announcement, language=VOICES[language])
    gather.say(QUESTION[language], language=VOICES[language])
    if language == "ja":
        gather.say(ENGLISH_OFFER, language=VOICES["en"])
    response.append(gather)
    # Reached only when the caller pressed nothing: report "no answer" to the same place.
    response.redirect(
        public_url("twilio-voice-consent", retries=ANSWER_RETRIES, **query), method="POST"
    )
    return str(response)


# --- the answer to the question ------------------------------------------------------------


def answer_consent(params, query, *, idempotency_token=""):
    """Record the caller's answer, then connect them, recording only if consent allows.

    An answer for a call that has ended has nobody to connect and nothing to record: most
    likely a captured signed request sent again (the idempotency header is not signed). It is
    answered with a hang-up and writes nothing, neither to the ledger nor to the call.
    """
    call = find_or_create_call(params)
    if call.status in Call.FINAL_STATUSES:
        logger.warning("Consent answer for call %s, which has ended: nothing written", call.pk)
        response = VoiceResponse()
        response.hangup()
        return str(response)
    language = "en" if query.get("lang") == "en" else "ja"
    attempt = _int(query.get("attempt"), 1)
    notice = published_notice(_int(query.get("notice"), 0)) or notice_in_force()
    digits = params.get("Digits", "")

    if notice is None:
        return connect(call, VoiceResponse(), record=False, language=language)
    if digits == ENGLISH and language == "ja":
        Call.objects.filter(pk=call.pk).update(language="en")
        return ask_for_consent(notice, language="en", attempt=attempt)
    if digits not in (AGREE, REFUSE) and attempt < PROMPT_ATTEMPTS:
        return ask_for_consent(notice, language=language, attempt=attempt + 1, again=True)

    granted = digits == AGREE
    note = "" if digits in (AGREE, REFUSE) else "no valid keypress after two prompts"
    _record_answer(call, params, notice, language, digits, granted, note, idempotency_token)
    response = VoiceResponse()
    if granted:
        permission = may_record(call=call)
        if permission:
            say(response, CONNECTING[language], language)
            return connect(call, response, record=True, language=language)
    say(response, NOT_RECORDED[language], language)
    return connect(call, response, record=False, language=language)


def _record_answer(call, params, notice, language, digits, granted, note, token):
    """Write the answer once, even when Twilio retries the request while the first one runs.

    The ledger keeps one keypress answer per call and party (a unique constraint), so of two
    requests at the same instant one writes and the other finds that answer. The
    ``I-Twilio-Idempotency-Token`` header is kept as evidence only: it is not signed, so it
    decides nothing.
    """
    party_role = (
        ConsentRecord.PartyRole.CALLER
        if call.direction == Call.Direction.INBOUND
        else ConsentRecord.PartyRole.CALLEE
    )
    try:
        record_consent(
            customer=call.customer,
            call=call,
            party_role=party_role,
            decision=ConsentRecord.Decision.GRANTED if granted else ConsentRecord.Decision.REFUSED,
            method=ConsentRecord.Method.IVR_KEYPRESS,
            notice=notice,
            announcement_text=spoken_announcement(notice, language),
            digits=digits,
            recorded_by_system="twilio-ivr",
            source_request={
                "CallSid": call.sid,
                "AccountSid": params.get("AccountSid", ""),
                "Digits": digits,
                "language": language,
                "idempotency_token": token,
            },
            note=note,
        )
    except IntegrityError:
        if ConsentRecord.objects.keypress_answer(call=call, party_role=party_role) is None:
            raise  # another constraint failed: not a retry
        # A retry: the answer written first stands, and the ledger is read from here on.
    if not granted:
        # Ends the use of a recording the call may already have; idempotent, so a retry
        # finishes what a first request that failed half-way began.
        forget_without_consent(call=call)


# --- routing -------------------------------------------------------------------------------


def available_operators():
    """Operators who are available and have standing consent to being recorded."""
    candidates = Operator.objects.filter(
        availability=Operator.Availability.AVAILABLE, recording_acknowledged_at__isnull=False
    ).order_by("pk")
    operators = [operator for operator in candidates if has_standing_consent(operator)]
    remember_routing(operator.routing_address for operator in operators)
    return operators


def connect(call, response, *, record, language):
    """Ring every available operator at once; the first to answer takes the call."""
    operators = available_operators()
    if not operators:
        Call.objects.filter(pk=call.pk).update(missed=True)
        CallEvent.objects.create(call=call, kind=CallEvent.Kind.NO_OPERATOR)
        say(response, NO_OPERATOR[language], language)
        response.hangup()
        return str(response)
    options = {"timeout": DIAL_TIMEOUT_SECONDS, "answer_on_bridge": True}
    if record:
        options.update(
            record="record-from-answer-dual",
            recording_status_callback=public_url(
                "twilio-recordings-status", retries=CALLBACK_RETRIES
            ),
            recording_status_callback_method="POST",
            recording_status_callback_event="in-progress completed absent",
        )
        # Never on a call that has ended: a late or replayed answer must not move it back.
        Call.RECORDING_STATE_TRANSITIONS.apply(
            Call.objects.filter(pk=call.pk).exclude(status__in=Call.FINAL_STATUSES),
            to=Call.RecordingState.REQUESTED,
        )
    dial = response.dial(**options)
    for operator in operators:
        leg = {
            "status_callback": public_url(
                "twilio-voice-status", retries=CALLBACK_RETRIES, operator=operator.pk
            ),
            "status_callback_event": "answered completed",
            "status_callback_method": "POST",
        }
        if operator.routing_address.startswith("sip:"):
            dial.sip(operator.routing_address, **leg)
        else:
            dial.number(operator.routing_address, **leg)
    return str(response)


# The routing addresses of the operators last read as available, and when (monotonic seconds):
# what the fallback rings while the database cannot be read. Per process, in memory: Django's
# cache is Redis in production, which may be down too.
_last_routing = (float("-inf"), ())


def remember_routing(addresses):
    global _last_routing
    _last_routing = (time.monotonic(), tuple(addresses))


def remembered_routing():
    """The operators last read as available, if read within FALLBACK_OPERATORS_MAX_AGE."""
    read_at, addresses = _last_routing
    if time.monotonic() - read_at > settings.FALLBACK_OPERATORS_MAX_AGE:
        return ()
    return addresses


def fallback_twiml():
    """What the caller hears when something inside a webhook failed: connected, not recorded.

    Needs no database: when it cannot be read the operators last read as available are
    rung (if read within FALLBACK_OPERATORS_MAX_AGE), else FALLBACK_DIAL_TARGET.
    """
    response = VoiceResponse()
    say(response, NOT_RECORDED["ja"], "ja")
    try:
        # Not recorded, so the operators' consent to recording does not matter here, and the
        # consent ledger may be what failed: ring whoever is available.
        with savepoint_if_in_transaction():
            addresses = [
                operator.routing_address
                for operator in Operator.objects.filter(
                    availability=Operator.Availability.AVAILABLE
                ).order_by("pk")
            ]
        remember_routing(addresses)
    except Exception:  # the database itself may be what failed
        logger.warning("Fallback: the operators could not be read", exc_info=True)
        addresses = None
    if addresses is None:
        addresses = list(remembered_routing()) or (
            [settings.FALLBACK_DIAL_TARGET] if settings.FALLBACK_DIAL_TARGET else []
        )
        if not addresses:
            logger.error(
                "Fallback: the database cannot be read, no operator was read as available "
                "in the last %s s and FALLBACK_DIAL_TARGET is not set: the caller hears an "
                "apology and is hung up on. Set FALLBACK_DIAL_TARGET.",
                settings.FALLBACK_OPERATORS_MAX_AGE,
            )
    if not addresses:
        say(response, NO_OPERATOR["ja"], "ja")
        response.hangup()
        return str(response)
    dial = response.dial(timeout=DIAL_TIMEOUT_SECONDS, answer_on_bridge=True)
    for address in addresses:
        if address.startswith("sip:"):
            dial.sip(address)
        else:
            dial.number(address)
    return str(response)


# --- status callbacks ----------------------------------------------------------------------

RECORDING_STATES = {
    "in-progress": Call.RecordingState.RECORDING,
    "absent": Call.RecordingState.NOT_RECORDED,
}


# Twilio's RecordingStatus → the recording's status in our pipeline.
RECORDING_STATUSES = {
    "in-progress": Recording.Status.IN_PROGRESS,
    "completed": Recording.Status.COMPLETED,
    "absent": Recording.Status.ABSENT,
    "failed": Recording.Status.FAILED,
}


def recording_callback(params):
    """The fields of a recording status callback, as ``note_recording_status`` takes them."""
    return {
        "sid": params.get("RecordingSid", ""),
        "call_sid": params.get("CallSid", ""),
        "status": RECORDING_STATUSES.get(params.get("RecordingStatus", "")),
        "duration": _int(params.get("RecordingDuration"), None),
        "channels": _int(params.get("RecordingChannels"), None),
        "source": params.get("RecordingSource", ""),
        "started_at": _twilio_time(params.get("RecordingStartTime")),
        "media_url": params.get("RecordingUrl", ""),
        "twilio_error_code": params.get("ErrorCode", ""),
    }


def apply_recording_status(params):
    """Keep the recording (``recordings.ingest``) and follow its state on the call."""
    note_recording_status(**recording_callback(params))
    state = RECORDING_STATES.get(params.get("RecordingStatus", ""))
    if state is None:
        return False
    the_call = Call.objects.filter(sid=params.get("CallSid", ""))
    return Call.RECORDING_STATE_TRANSITIONS.apply(the_call, to=state) == 1


def apply_call_status(params, query):
    """Apply a call status callback; late, repeated or shuffled callbacks change nothing.

    A callback for an operator's leg (``?operator=…``) tells which operator answered the
    customer's call (its ``ParentCallSid``).
    """
    status = params.get("CallStatus", "")
    if status not in Call.Status.values:
        return False
    if query.get("operator") and params.get("ParentCallSid"):
        return _operator_leg(params, _int(query.get("operator"), 0), status)
    callback = {
        "sid": params.get("CallSid", ""),
        "status": status,
        "sequence_number": _int(params.get("SequenceNumber"), 0),
        "timestamp": _timestamp(params.get("Timestamp")),
        "duration": _int(params.get("CallDuration"), None),
    }
    if Call.objects.apply_status(**callback):
        if status in Call.FINAL_STATUSES:
            release_operator(Call.objects.get(sid=callback["sid"]))
        return True
    if Call.objects.filter(sid=callback["sid"]).exists():
        return False  # late or repeated
    # A call we never saw ring (its first webhook was lost): keep it all the same.
    register_call(params)
    return Call.objects.apply_status(**callback)


def _operator_leg(params, operator_id, status):
    """An operator's leg of a customer's call: the first to answer takes the call, and is on
    it (no longer rung) until their leg or the customer's call ends."""
    if status in Call.FINAL_STATUSES:
        taken = Call.objects.filter(sid=params["ParentCallSid"], operator_id=operator_id).first()
        return taken is not None and release_operator(taken)
    if status != Call.Status.IN_PROGRESS:
        return False
    operator = Operator.objects.filter(pk=operator_id).first()
    if operator is None:
        return False
    updated = Call.objects.filter(sid=params["ParentCallSid"], operator__isnull=True).update(
        operator=operator
    )
    if updated:
        Operator.objects.transition(operator.pk, to=Operator.Availability.ON_CALL)
        call = Call.objects.get(sid=params["ParentCallSid"])
        CallEvent.objects.create(
            call=call, kind=CallEvent.Kind.OPERATOR_ANSWERED, detail=operator.display_name
        )
    return bool(updated)


def _int(value, default):
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _timestamp(value):
    if not value:
        return timezone.now()
    try:
        return parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return timezone.now()


def _twilio_time(value):
    """RecordingStartTime comes as an RFC 2822 date; ISO 8601 is accepted too."""
    if not value:
        return None
    try:
        return parsedate_to_datetime(value)
    except (TypeError, ValueError):
        parsed = parse_datetime(value)
        if parsed and parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed


# --- the automated card payment (<Pay>) ------------------------------------------------------

PAY_INTRO = {
    "ja": "カードでのお支払いに進みます。ご案内に従って、プッシュボタンで入力してください。"
    "入力した番号は録音されず、担当者にも伝わりません。",
    "en": "We will now take your card payment. Please key in the details as asked. "
    "They are not recorded and the operator does not hear them.",
}
PAY_RESULT = {
    "success": {
        "ja": "お支払いを受け付けました。ありがとうございました。",
        "en": "Your payment has been accepted. Thank you.",
    },
    "other": {
        "ja": "お支払いは完了しませんでした。担当者におつなぎします。",
        "en": "The payment was not completed. We will put you back through to an operator.",
    },
}


def answer_pay(params, query):
    """The TwiML of an automated card payment the operator sent the caller to: ``<Pay>`` for
    the amount, then back to an operator (``answer_pay_done``). A payment that is not open
    (a replayed or stale request) puts the caller through to an operator at once."""
    payment = payments.ivr_payment(_int(query.get("payment"), 0), call_sid=params.get("CallSid"))
    response = VoiceResponse()
    if payment is None:
        call = find_or_create_call(params)
        return connect(call, response, record=bool(may_record(call=call)), language=call.language)
    language = payment.call.language
    say(response, PAY_INTRO[language], language)
    response.pay(
        payment_connector=settings.TWILIO_PAY_CONNECTOR,
        charge_amount=str(payment.amount),
        currency="jpy",
        token_type=settings.TWILIO_PAY_TOKEN_TYPE,
        security_code=True,
        postal_code=False,
        language="ja-JP" if language == "ja" else "en-US",
        description=f"call {payment.call.sid}",
        action=public_url("twilio-voice-pay-done", payment=payment.pk),
        status_callback=public_url("twilio-voice-payments", retries=CALLBACK_RETRIES),
    )
    return str(response)


def answer_pay_done(params, query):
    """``<Pay>``'s action: keep its result (never the card), tell the caller, and put them
    through to an operator again, recorded anew if their consent allows."""
    call = find_or_create_call(params)
    payment = payments.ivr_payment(_int(query.get("payment"), 0), call_sid=call.sid)
    result = params.get("Result", "")
    if payment is not None:
        payments.note_ivr_result(
            payment,
            result=result,
            token=params.get("PaymentToken", ""),
            confirmation=params.get("PaymentConfirmationCode", ""),
            error=params.get("PaymentError", "") or params.get("ErrorType", ""),
        )
    language = call.language
    response = VoiceResponse()
    say(response, PAY_RESULT["success" if result == "success" else "other"][language], language)
    return connect(call, response, record=bool(may_record(call=call)), language=language)
