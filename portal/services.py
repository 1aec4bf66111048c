"""Proof that a caller holds a phone number: a one-time code by SMS or by a voice call.

Guarantees:

* the code is six random digits; only an HMAC of it (keyed from ``SECRET_KEY``) is stored;
* a code is valid for ten minutes, once, and allows five attempts; a new code replaces the
  previous one;
* sending is limited per number and per IP address (in Redis when it is configured, so the
  limits hold across processes), and so is checking;
* nothing tells whether a number belongs to a customer: every well-formed number gets the
  same answer and the same code, and the portal shows a customer's calls only after the proof;
* codes go only where they cannot be used to pump traffic (``may_receive``): SMS to Japanese
  mobiles, calls to Japanese landlines and mobiles, never premium-rate, free-dial or abroad
  unless a setting widens it; and the whole portal sends at most a budget per hour and per
  day, staff being emailed once per window when it is reached. A code refused for either
  reason is not sent, and the requester sees exactly what a code that was sent shows.

With ``TWILIO_VERIFY_SERVICE_SID`` set, Twilio Verify sends and checks the code instead.
"""

import hashlib
import hmac
import logging
import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import timedelta

import phonenumbers
from django.conf import settings
from django.core.cache import cache
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _
from phonenumbers import PhoneNumberType

import twilio_client
from contactcenter.roles import staff_emails

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


# Number types no code is ever sent to, whatever the settings: each call or message to them
# earns their holder money, or costs us far more than a call to a subscriber.
NEVER_SENT_TO = {
    PhoneNumberType.PREMIUM_RATE,
    PhoneNumberType.TOLL_FREE,  # 0120, 0800: the called party pays
    PhoneNumberType.SHARED_COST,
    PhoneNumberType.UAN,  # 0570 ナビダイヤル
    PhoneNumberType.PERSONAL_NUMBER,  # 0600 (FMC)
    PhoneNumberType.PAGER,  # 020
    PhoneNumberType.VOICEMAIL,
    PhoneNumberType.UNKNOWN,
}
# Japanese numbers a voice code may be read out to without any setting. 050 (IP phones,
# PhoneNumberType.VOIP) is left out: anyone can rent one online in minutes, so it is the
# cheapest way to pump calls; a center whose callers use them lists +8150 in
# PORTAL_VOICE_ALLOWED_PREFIXES.
VOICE_TYPES_JP = {
    PhoneNumberType.FIXED_LINE,
    PhoneNumberType.MOBILE,
    PhoneNumberType.FIXED_LINE_OR_MOBILE,
}


def may_receive(phone_number, channel):
    """Whether the portal may send a code to ``phone_number`` (E.164) by ``channel``.

    SMS: only numbers starting with one of ``PORTAL_SMS_ALLOWED_PREFIXES`` (by default the
    Japanese mobiles 070, 080, 090). Calls: Japanese landlines and mobiles, and numbers
    starting with one of ``PORTAL_VOICE_ALLOWED_PREFIXES``. The types in ``NEVER_SENT_TO``
    are refused either way.
    """
    try:
        number = phonenumbers.parse(phone_number, None)
    except phonenumbers.NumberParseException:
        return False
    if not phonenumbers.is_valid_number(number):
        return False
    kind = phonenumbers.number_type(number)
    if kind in NEVER_SENT_TO:
        return False
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if channel == Channel.SMS:
        return e164.startswith(settings.PORTAL_SMS_ALLOWED_PREFIXES)
    japanese = phonenumbers.region_code_for_number(number) == "JP"
    return (japanese and kind in VOICE_TYPES_JP) or e164.startswith(
        settings.PORTAL_VOICE_ALLOWED_PREFIXES
    )


def _within_budget():
    """Count one more code sent by the portal; False (and staff told) when over budget."""
    windows = [
        (settings.PORTAL_SEND_BUDGET_PER_HOUR, 60 * 60),
        (settings.PORTAL_SEND_BUDGET_PER_DAY, 24 * 60 * 60),
    ]
    over = [
        (count, seconds)
        for count, seconds in windows
        if _over_limit("send-budget", [(count, seconds)])
    ]
    for count, seconds in over:
        # cache.add is atomic (SET NX in Redis): one alert per window, across processes.
        if cache.add(f"portal:send-budget-alerted:{seconds}", True, timeout=seconds):
            _alert_staff_budget(count, seconds)
    return not over


def _alert_staff_budget(count, seconds):
    recipients = staff_emails()
    logger.warning("Portal send budget reached: %d codes in %d seconds", count, seconds)
    if not recipients:
        return
    with translation.override("ja"):
        window = _("hour") if seconds == 60 * 60 else _("day")
        subject = _("The portal stopped sending codes: its budget per %(window)s is reached") % {
            "window": window
        }
        body = _(
            "The recordings requests portal has sent %(count)d codes (SMS and calls) in the "
            "last %(window)s, its budget (PORTAL_SEND_BUDGET_PER_HOUR, PORTAL_SEND_BUDGET_PER_DAY"
            "). It sends no more codes until the window ends. Many requests at once may be SMS "
            "pumping: check the portal's requests before raising the budget."
        ) % {"count": count, "window": window}
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients)
    except OSError:
        logger.exception("Could not email staff that the portal's send budget is reached")


def send_code(*, phone_number, channel, ip=None):
    """Send a new code to ``phone_number`` (E.164) by ``channel``; return the verification.

    Raises ``ProofError`` when a limit is reached or Twilio cannot send it. A number the
    policy refuses (``may_receive``) or a send over the portal's budget raises nothing: a
    verification is kept as for a sent code, with a code nobody knows, so that the answers
    (this one, and those to the codes tried next) are the same as for a code that was sent.
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
    if not may_receive(phone_number, channel):
        logger.info("Portal code to %s by %s refused by the sending policy", phone_number, channel)
        return _unsent(phone_number=phone_number, channel=channel, ip=ip)
    if not _within_budget():
        return _unsent(phone_number=phone_number, channel=channel, ip=ip)
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


def _unsent(*, phone_number, channel, ip):
    now = timezone.now()
    verification = PhoneVerification(
        phone_number=phone_number,
        channel=channel,
        created_at=now,
        expires_at=now + CODE_LIFETIME,
        ip=ip,
        code_hash=_code_hash(phone_number, secrets.token_hex(16)),
    )
    with transaction.atomic():
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


def normalise_code(code):
    """The code as typed, in ASCII digits: full-width digits (１２３４５６, a Japanese input
    method's default) are NFKC-normalised, and spaces and hyphens between digits dropped."""
    return re.sub(r"[\s\-]", "", unicodedata.normalize("NFKC", code or ""))


def answer_channel(phone_number, proven_by):
    """How to answer a request from ``phone_number`` proven by ``proven_by``: by SMS only
    when the number was proven by SMS and takes SMS (a mobile, ``may_receive``); else by a
    voice call (a landline caller proved it by a call and can only be answered by one)."""
    if proven_by == Channel.SMS and may_receive(phone_number, Channel.SMS):
        return Channel.SMS
    return Channel.CALL


def check_code(*, phone_number, code, ip=None):
    """Is ``code`` the current code of ``phone_number``? Each code is accepted once."""
    code = normalise_code(code)
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
    if not (code.isascii() and code.isdigit() and len(code) == CODE_DIGITS):
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
