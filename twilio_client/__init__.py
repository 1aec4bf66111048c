"""The one place where the application talks to Twilio's REST API.

Built on the official ``twilio`` client. ``TWILIO_API_BASE_URL`` points it elsewhere (the
local Twilio emulator in development and tests). Every failure is turned into a
``TwilioError`` whose message a person can act on; callers decide whether to retry.
"""

import logging

import requests
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

    @property
    def may_be_lagging(self):
        """A 401 or 404 for a resource Twilio has just told us about: its media is served a
        moment after the recording's callback, and until then Twilio may answer either. Worth
        a few more tries, not many (a 404 that lasts means the recording is gone)."""
        return self.status in (401, 404)


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


def recording_media_url(recording_sid):
    """Where Twilio serves a recording's audio: WAV, both channels, behind Basic auth."""
    return (
        f"{settings.TWILIO_API_BASE_URL}/2010-04-01/Accounts/{settings.TWILIO_ACCOUNT_SID}"
        f"/Recordings/{recording_sid}.wav?RequestedChannels=2"
    )


def open_recording_media(recording_sid):
    """Start streaming a recording's audio; the caller reads ``iter_content`` and closes it.

    The official client reads whole bodies into memory, so the media is streamed with
    ``requests`` (what the client is built on) from the same base URL and credentials.
    """
    url = recording_media_url(recording_sid)
    try:
        response = requests.get(
            url,
            auth=(settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN),
            stream=True,
            timeout=TIMEOUT_SECONDS,
        )
    except requests.RequestException as error:
        logger.warning("Twilio unreachable for the media of %s: %s", recording_sid, error)
        raise TwilioError(_("Twilio could not be reached. Try again in a moment.")) from error
    if response.status_code != 200:
        response.close()
        raise TwilioError(
            _("Twilio refused the recording's audio (HTTP %(status)s).")
            % {"status": response.status_code},
            status=response.status_code,
        )
    return response


def redirect_call(*, call_sid, url):
    """Send a live call to the TwiML at ``url`` (POST): its ``<Dial>`` ends, the operator's leg
    hangs up and the dial's recording ends with it."""
    _call_twilio(
        f"redirect of call {call_sid}",
        lambda: client().calls(call_sid).update(url=url, method="POST"),
    )


def start_payment(
    *, call_sid, idempotency_key, status_callback, charge_amount, currency, description
):
    """Open an agent-assisted payment (Pay) on a live call; return the payment's SID (PK…).

    The caller keys the card on the keypad; Twilio hides the tones from the operator, sends
    the card to the account's Pay connector, and tells ``status_callback`` only the progress,
    the result and a token."""
    payment = _call_twilio(
        f"payment on call {call_sid}",
        lambda: (
            client()
            .calls(call_sid)
            .payments.create(
                idempotency_key=idempotency_key,
                status_callback=status_callback,
                payment_connector=settings.TWILIO_PAY_CONNECTOR,
                charge_amount=charge_amount,
                currency=currency,
                description=description,
                token_type=settings.TWILIO_PAY_TOKEN_TYPE,
                security_code=True,
                postal_code=False,
            )
        ),
    )
    return payment.sid


def update_payment(
    *, call_sid, payment_sid, idempotency_key, status_callback, capture=None, status=None
):
    """Ask the caller for one part of the card (``capture``: ``payment-card-number``,
    ``expiration-date``, ``security-code``), or end the payment (``status``: ``complete``
    sends it to the connector, ``cancel`` drops it)."""
    options = {"capture": capture} if capture else {"status": status}
    _call_twilio(
        f"payment {payment_sid}",
        lambda: (
            client()
            .calls(call_sid)
            .payments(payment_sid)
            .update(idempotency_key=idempotency_key, status_callback=status_callback, **options)
        ),
    )


def recording_encryption_details(recording_sid):
    """How Twilio encrypted a recording with our public key (Voice Recording Encryption):
    ``{"type": "rsa-aes", "public_key_sid": "CR…", "encrypted_cek": …, "iv": …}`` (base64),
    or None when the recording is not encrypted."""
    recording = _call_twilio(
        f"recording {recording_sid}", lambda: client().recordings(recording_sid).fetch()
    )
    return dict(recording.encryption_details) if recording.encryption_details else None


def _accounts():
    twilio = client()
    twilio.accounts.base_url = settings.TWILIO_ACCOUNTS_BASE_URL
    return twilio.accounts.v1.credentials.public_key


def _public_key_fields(key):
    return {"sid": key.sid, "friendly_name": key.friendly_name, "date_created": key.date_created}


def create_public_key(*, public_key_pem, friendly_name):
    """Register a public key for Voice Recording Encryption (Credentials PublicKey API)."""
    key = _call_twilio(
        "registration of a public key",
        lambda: _accounts().create(public_key=public_key_pem, friendly_name=friendly_name),
    )
    return _public_key_fields(key)


def list_public_keys():
    """The public keys registered on the account, newest first as Twilio lists them."""
    keys = _call_twilio("list of public keys", lambda: list(_accounts().stream()))
    return [_public_key_fields(key) for key in keys]


def delete_recording(recording_sid):
    """Delete Twilio's copy of a recording; one that is already gone counts as deleted."""
    try:
        _call_twilio(
            f"deletion of recording {recording_sid}",
            lambda: client().recordings(recording_sid).delete(),
        )
    except TwilioError as error:
        if error.status == 404:
            return
        raise


def _only_logged(what, text):
    """In development with the built-in credentials and no emulator, Twilio cannot be
    reached at all: say in the log what would have been sent, so the portal can be tried."""
    from django.conf import settings as current

    if not (
        current.DEBUG
        and current.TWILIO_ACCOUNT_SID == "AC" + "0" * 32
        and current.TWILIO_API_BASE_URL == "https://api.twilio.com"
    ):
        return None
    logger.warning("Development, Twilio not configured: %s not sent. It reads: %s", what, text)
    return "dev-not-sent"


def send_sms(*, to, body):
    """Send a text message from the center's number; return its SID."""
    if sid := _only_logged(f"SMS to {to}", body):
        return sid
    message = _call_twilio(
        f"SMS to {to}",
        lambda: client().messages.create(to=to, from_=settings.TWILIO_CALLER_ID, body=body),
    )
    return message.sid


def place_call(*, to, twiml):
    """Call ``to`` from the center's number and play ``twiml``; return the call's SID."""
    if sid := _only_logged(f"call to {to}", twiml):
        return sid
    call = _call_twilio(
        f"call to {to}",
        lambda: client().calls.create(to=to, from_=settings.TWILIO_CALLER_ID, twiml=twiml),
    )
    return call.sid


def _verify_service():
    twilio = client()
    twilio.verify.base_url = settings.TWILIO_VERIFY_BASE_URL
    return twilio.verify.v2.services(settings.TWILIO_VERIFY_SERVICE_SID)


def start_verification(*, to, channel):
    """Have Twilio Verify send a code to ``to`` by ``sms`` or ``call``."""
    _call_twilio(
        f"verification of {to}",
        lambda: _verify_service().verifications.create(to=to, channel=channel, locale="ja"),
    )


def check_verification(*, to, code):
    """True when Twilio Verify approves ``code`` for ``to``."""
    try:
        check = _call_twilio(
            f"verification check of {to}",
            lambda: _verify_service().verification_checks.create(to=to, code=code),
        )
    except TwilioError as error:
        if error.status == 404:  # expired, used up or never started
            return False
        raise
    return check.status == "approved"


# Twilio's largest page: fewer round trips when the reconciliation lists a day of the account.
LIST_PAGE_SIZE = 1000


def _seconds(value):
    """Twilio gives durations as strings, empty while a call or recording is running."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _recording_fields(recording):
    return {
        "sid": recording.sid,
        "call_sid": recording.call_sid,
        "status": recording.status,
        "duration": _seconds(recording.duration),
        "channels": recording.channels,
        "source": recording.source,
        "date_created": recording.date_created,
        "start_time": recording.start_time,
    }


def _call_fields(call):
    return {
        "sid": call.sid,
        "parent_call_sid": call.parent_call_sid,
        "status": call.status,
        "direction": call.direction,
        "from": call._from,
        "to": call.to,
        "start_time": call.start_time,
        "end_time": call.end_time,
        "duration": _seconds(call.duration),
    }


def list_recordings(*, created_after):
    """Every recording of the account created on or after ``created_after``, as dicts
    (``sid``, ``call_sid``, ``status``, ``duration``, ``date_created``, …).

    Read to the last page before returning, so a failure part-way gives a ``TwilioError``
    rather than half a list.
    """
    return _call_twilio(
        "listing of recordings",
        lambda: [
            _recording_fields(recording)
            for recording in client().recordings.stream(
                date_created_after=created_after, page_size=LIST_PAGE_SIZE
            )
        ],
    )


def list_calls(*, started_after, status=None):
    """Every call of the account started on or after ``started_after`` (of ``status`` if
    given), as dicts (``sid``, ``status``, ``from``, ``to``, ``start_time``, ``end_time``,
    ``duration``, …), read to the last page before returning."""
    options = {"start_time_after": started_after, "page_size": LIST_PAGE_SIZE}
    if status:
        options["status"] = status
    return _call_twilio(
        "listing of calls",
        lambda: [_call_fields(call) for call in client().calls.stream(**options)],
    )


def fetch_call(call_sid):
    """One call as Twilio knows it, as a dict like those of ``list_calls``."""
    return _call_twilio(f"call {call_sid}", lambda: _call_fields(client().calls(call_sid).fetch()))
