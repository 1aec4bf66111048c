"""The one place where the application talks to Twilio's REST API.

Built on the official ``twilio`` client. ``TWILIO_API_BASE_URL`` points it elsewhere (the
local Twilio emulator in development and tests). Every failure is turned into a
``TwilioError`` whose message a person can act on; callers decide whether to retry.
"""

import logging

from django.conf import settings
from django.utils.translation import gettext_lazy as _
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

logger = logging.getLogger(__name__)

CURRENT_RECORDING = "Twilio.CURRENT"
# Twilio answers within a second or two; a hung connection must not hold a worker or a
# request for long.
TIMEOUT_SECONDS = 10


class TwilioError(Exception):
    """Twilio refused a request or could not be reached."""

    def __init__(self, message, *, status=None, code=None):
        super().__init__(str(message))
        self.message = message
        self.status = status
        self.code = code

    @property
    def retryable(self):
        """Network failures and Twilio's own 5xx/429 answers may succeed later."""
        return self.status is None or self.status >= 500 or self.status == 429


def client():
    twilio = Client(
        settings.TWILIO_ACCOUNT_SID,
        settings.TWILIO_AUTH_TOKEN,
        http_client=TwilioHttpClient(timeout=TIMEOUT_SECONDS),
    )
    twilio.api.base_url = settings.TWILIO_API_BASE_URL
    return twilio


def _call_twilio(action, operation):
    try:
        return operation()
    except TwilioRestException as error:
        logger.warning(
            "Twilio refused %s: HTTP %s, code %s: %s", action, error.status, error.code, error.msg
        )
        raise TwilioError(
            _("Twilio refused the request (%(code)s): %(message)s")
            % {"code": error.code or error.status, "message": error.msg},
            status=error.status,
            code=error.code,
        ) from error
    except (TwilioException, OSError) as error:
        logger.warning("Twilio unreachable for %s: %s", action, error)
        raise TwilioError(_("Twilio could not be reached. Try again in a moment.")) from error


def update_recording(*, call_sid, status, recording_sid=CURRENT_RECORDING):
    """Pause, resume or stop a live call's recording; paused audio is replaced by silence."""
    options = {"status": status}
    if status == "paused":
        options["pause_behavior"] = "silence"
    instance = _call_twilio(
        f"recording update of {call_sid}",
        lambda: client().calls(call_sid).recordings(recording_sid).update(**options),
    )
    return {"sid": instance.sid, "status": instance.status}
