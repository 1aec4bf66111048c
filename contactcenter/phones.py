"""Phone numbers as callers present them, and as we store and show them.

Numbers are stored in E.164 (``+81312345678``) and shown in the national format for
Japanese numbers (``03-1234-5678``) and the international format otherwise.

A caller who withholds their number (非通知) reaches us with a placeholder instead of a
number. Twilio sends either a word (``anonymous``, ``restricted``…) or the word spelt on a
phone keypad as a fake number (``+266696687`` is A-N-O-N-Y-M-O-U-S), so both are recognised
here and never mistaken for a real customer's number.
"""

from dataclasses import dataclass

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

WITHHELD_PLACEHOLDERS = {
    "",
    "anonymous",
    "private",
    "restricted",
    "blocked",
    "unknown",
    "unavailable",
    "+266696687",  # ANONYMOUS
    "+7378742833",  # RESTRICTED
    "+86282452253",  # UNAVAILABLE
    "+2562533",  # BLOCKED
}


class CallerIdStatus(models.TextChoices):
    PRESENTED = "presented", _("Number presented")
    WITHHELD = "withheld", _("Number withheld")
    UNAVAILABLE = "unavailable", _("Number unavailable")


@dataclass(frozen=True)
class CallerId:
    """What a call's ``From`` says about who is calling."""

    status: str
    e164: str | None = None


def parse_phone_number(raw, *, region=None):
    """Return ``raw`` in E.164, or raise ``ValidationError`` with a message a person can act on."""
    text = (raw or "").strip()
    if not text:
        raise ValidationError(_("Enter a phone number."), code="required")
    try:
        number = phonenumbers.parse(text, region or settings.PHONE_DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        raise ValidationError(
            _("“%(value)s” is not a phone number. Enter it like 03-1234-5678 or +81312345678."),
            code="invalid",
            params={"value": text},
        ) from None
    if not phonenumbers.is_valid_number(number):
        raise ValidationError(
            _("“%(value)s” is not a valid phone number. Check the digits and the area code."),
            code="invalid",
            params={"value": text},
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def format_phone_number(e164):
    """Show a stored number as people write it: national format at home, international abroad."""
    if not e164:
        return ""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    region = phonenumbers.region_code_for_number(number)
    style = (
        phonenumbers.PhoneNumberFormat.NATIONAL
        if region == settings.PHONE_DEFAULT_REGION
        else phonenumbers.PhoneNumberFormat.INTERNATIONAL
    )
    return phonenumbers.format_number(number, style)


def read_caller_id(raw):
    """Classify a Twilio ``From`` value: a real number, withheld, or not a usable number.

    SIP and client identities (``sip:…``, ``client:…``) and malformed numbers are
    "unavailable": we cannot tie them to a customer by phone number.
    """
    text = (raw or "").strip()
    if text.lower() in WITHHELD_PLACEHOLDERS:
        return CallerId(CallerIdStatus.WITHHELD)
    try:
        return CallerId(CallerIdStatus.PRESENTED, parse_phone_number(text))
    except ValidationError:
        return CallerId(CallerIdStatus.UNAVAILABLE)
