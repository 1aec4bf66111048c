"""Proof that a caller holds a phone number: a one-time code by SMS or by a voice call.

Guarantees:

* the code is six random digits; only an HMAC of it (keyed from ``SECRET_KEY``) is stored;
* a code is valid for ten minutes, once, and allows five attempts; a new code replaces the
  previous one;
* sending is limited per number and per IP address (in Redis when it is configured, so the
  limits hold across processes), and so is checking;
* nothing tells whether a number belongs to a customer: every well-formed number gets the
  same answer and the same code, and the portal shows a customer's calls only after the proof.

With ``TWILIO_VERIFY_SERVICE_SID`` set, Twilio Verify sends and checks the code instead.
"""

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

import twilio_client

from .models import PhoneVerification

logger = logging.getLogger(__name__)

CODE_DIGITS = 6
CODE_LIFETIME = timedelta(minutes=10)
MAX_ATTEMPTS = 5
# (how many, per how many seconds)
SEND_LIMITS_PER_NUMBER = [(3, 15 * 60), (10, 24 * 60 * 60)]
SEND_LIMITS_PER_IP = [(10, 60 * 60)]
CHECK_LIMITS_PER_IP = [(30, 60 * 60)]

Channel = PhoneVerification.Channel


class ProofError(Exception):
    """The code could not be sent or accepted; ``message`` says what to do, in the user's
    language."""

    def __init__(self, message, *, status=400):
        super().__init__(str(message))
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Outcome:
    verified: bool
    message: str = ""


def _code_hash(phone_number, code):
    key = hashlib.sha256(("portal-code:" + settings.SECRET_KEY).encode()).digest()
    return hmac.new(key, f"{phone_number}:{code}".encode(), hashlib.sha256).hexdigest()


def _over_limit(name, limits):
    """Count one more event under ``name``; True when any of ``limits`` is exceeded."""
    over = False
    for count, seconds in limits:
        key = f"portal:{name}:{seconds}"
        cache.add(key, 0, timeout=seconds)
        try:
            value = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=seconds)
            value = 1
        over = over or value > count
    return over


def send_code(*, phone_number, channel, ip=None):
    """Send a new code to ``phone_number`` (E.164) by ``channel``; return the verification.

    Raises ``ProofError`` when a limit is reached or Twilio cannot send it.
    """
    if channel not in Channel.values:
        raise ProofError(_("Choose how to receive the code: text message or voice call."))
    if _over_limit(f"send-ip:{ip}", SEND_LIMITS_PER_IP) or _over_limit(
        f"send-number:{phone_number}", SEND_LIMITS_PER_NUMBER
    ):
        raise ProofError(
            _("Too many codes were asked for. Wait 15 minutes, then ask for a new code."),
            status=429,
        )
    now = timezone.now()
    verification = PhoneVerification(
        phone_number=phone_number,
        channel=channel,
        created_at=now,
        expires_at=now + CODE_LIFETIME,
        ip=ip,
        via_twilio_verify=bool(settings.TWILIO_VERIFY_SERVICE_SID),
    )
    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    try:
        if verification.via_twilio_verify:
            twilio_client.start_verification(to=phone_number, channel=channel)
        elif channel == Channel.SMS:
            twilio_client.send_sms(to=phone_number, body=sms_text(code))
        else:
            twilio_client.place_call(to=phone_number, twiml=voice_twiml(code))
    except twilio_client.TwilioError as error:
        logger.warning("Portal code to %s not sent: %s", phone_number, error)
        raise ProofError(
            _("The code could not be sent. Check the number, or try again in a few minutes."),
            status=503,
        ) from error
    if not verification.via_twilio_verify:
        verification.code_hash = _code_hash(phone_number, code)
    with transaction.atomic():
        # A new code replaces every earlier one for the number.
        PhoneVerification.objects.filter(
            phone_number=phone_number, verified_at__isnull=True, expires_at__gt=now
        ).update(expires_at=now)
        verification.save()
    return verification


def sms_text(code):
    return str(
        _(
            "Your code for the recording requests page: %(code)s (valid for 10 minutes). "
            "If you did not ask for it, ignore this message."
        )
        % {"code": code}
    )


def voice_twiml(code):
    """The code read out twice in Japanese, digit by digit, for callers on a landline."""
    from twilio.twiml.voice_response import VoiceResponse

    digits = "、".join(code)
    response = VoiceResponse()
    for _time in range(2):
        response.say(
            f"録音に関するご請求の確認コードをお知らせします。{digits}。",
            language="ja-JP",
        )
        response.pause(length=1)
    response.say("ご利用ありがとうございました。", language="ja-JP")
    return str(response)


def check_code(*, phone_number, code, ip=None):
    """Is ``code`` the current code of ``phone_number``? Each code is accepted once."""
    code = (code or "").strip()
    if _over_limit(f"check-ip:{ip}", CHECK_LIMITS_PER_IP):
        return Outcome(False, _("Too many attempts. Wait an hour, then ask for a new code."))
    now = timezone.now()
    # The attempt is counted and committed before the code is checked, so that Twilio Verify
    # is never called inside a transaction, and concurrent guesses cannot exceed the limit:
    # each one claims an attempt with a conditional UPDATE.
    verification = (
        PhoneVerification.objects.filter(
            phone_number=phone_number, verified_at__isnull=True, expires_at__gt=now
        )
        .order_by("-created_at")
        .first()
    )
    if verification is None:
        return Outcome(False, _("This code has expired. Ask for a new code."))
    claimed = PhoneVerification.objects.filter(
        pk=verification.pk, verified_at__isnull=True, attempts__lt=MAX_ATTEMPTS
    ).update(attempts=F("attempts") + 1)
    if not claimed:
        return Outcome(False, _("Too many wrong codes. Ask for a new code."))
    verification.refresh_from_db(fields=["attempts"])
    if not (code.isdigit() and len(code) == CODE_DIGITS):
        accepted = False
    elif verification.via_twilio_verify:
        try:
            accepted = twilio_client.check_verification(to=phone_number, code=code)
        except twilio_client.TwilioError:
            return Outcome(False, _("The code could not be checked. Try again in a moment."))
    else:
        accepted = hmac.compare_digest(verification.code_hash, _code_hash(phone_number, code))
    if not accepted:
        left = MAX_ATTEMPTS - verification.attempts
        if left <= 0:
            return Outcome(False, _("Too many wrong codes. Ask for a new code."))
        return Outcome(
            False,
            _("That code is not right. %(left)d attempt(s) left.") % {"left": left},
        )
    # Single use: of two requests with the right code at once, one proves the number.
    if not PhoneVerification.objects.filter(pk=verification.pk, verified_at__isnull=True).update(
        verified_at=now
    ):
        return Outcome(False, _("This code has expired. Ask for a new code."))
    return Outcome(True)
