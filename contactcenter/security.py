"""Web hardening that is not a library's: the Permissions-Policy header, refusing NUL
characters in query strings, and log lines that a client's input cannot forge."""

import logging
import re

from django.conf import settings
from django.http import HttpResponseBadRequest
from django.utils.translation import gettext as _

logger = logging.getLogger(__name__)

# Nothing we serve uses the camera, the microphone, the position or payment; a script
# injected despite the CSP gets none of them either. Audio playback needs no permission.
DEFAULT_PERMISSIONS_POLICY = {
    "camera": (),
    "microphone": (),
    "geolocation": (),
    "payment": (),
    "usb": (),
    "serial": (),
    "bluetooth": (),
    "midi": (),
    "magnetometer": (),
    "gyroscope": (),
    "accelerometer": (),
    "display-capture": (),
    "interest-cohort": (),
}


def permissions_policy_header(policy):
    """``{"camera": ()}`` as the header's text, ``camera=()``; ``"self"`` becomes ``self``."""
    return ", ".join(
        f"{feature}=({' '.join(origins)})" for feature, origins in sorted(policy.items())
    )


class PermissionsPolicyMiddleware:
    """Add Permissions-Policy (settings.PERMISSIONS_POLICY) to every response."""

    def __init__(self, get_response):
        self.get_response = get_response
        policy = getattr(settings, "PERMISSIONS_POLICY", DEFAULT_PERMISSIONS_POLICY)
        self.header = permissions_policy_header(policy)

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Permissions-Policy", self.header)
        return response


class RejectNulQueryMiddleware:
    """Answer 400 to a query string with a NUL character in a name or a value.

    PostgreSQL cannot store or compare a string with NUL in it, and the driver raises at the
    query: a ``?q=%00`` would be a 500 on every page that filters on a parameter. Forms are
    covered by Django's own validator; a query string is read directly by views and the admin.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if any("\x00" in key or "\x00" in value for key, value in _query_items(request)):
            logger.warning("Refused a query string with a NUL character: %s", request.path)
            return HttpResponseBadRequest(
                _("The address contains a character that cannot be used (NUL)."),
                content_type="text/plain; charset=utf-8",
            )
        return self.get_response(request)


def _query_items(request):
    for key, values in request.GET.lists():
        for value in values:
            yield key, value


# C0 and C1 controls and DEL, the line and paragraph separators that some log viewers
# break lines at, and the bidirectional overrides that reorder what a reader sees.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escape_control_characters(text):
    r"""``text`` with every control character written as an escape (``\n``, ``\x1b``,
    ``\u2028``), so that one log record is always one line whatever a client sent."""

    def escape(match):
        char = match.group()
        if char in _NAMED:
            return _NAMED[char]
        code = ord(char)
        return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"

    return _CONTROL.sub(escape, text)


class ControlCharacterEscapingFormatter(logging.Formatter):
    """A Formatter whose message part never contains a control character.

    Webhooks log fields that anyone can send (a CallSid of ``"x\nFAKE …"`` would otherwise
    write a second, forged line). The traceback of an exception, added after the message,
    keeps its own line breaks: it is ours, not the client's.
    """

    def formatMessage(self, record):
        safe = logging.makeLogRecord(record.__dict__)
        safe.message = escape_control_characters(record.message)
        return super().formatMessage(safe)
