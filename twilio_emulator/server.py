"""A local stand-in for Twilio's REST API, for development and tests.

It implements the subset of ``/2010-04-01`` the project uses, with HTTP Basic auth (account
SID and auth token) and Twilio's JSON error format, so the official ``twilio`` client works
against it unchanged when ``TWILIO_API_BASE_URL`` points here:

* ``POST   /2010-04-01/Accounts/{AC}/Calls/{CA}/Recordings.json``            start recording
* ``POST   /2010-04-01/Accounts/{AC}/Calls/{CA}/Recordings/{RE}.json``       pause/resume/stop
  (``RE`` may be ``Twilio.CURRENT``, the call's active recording)
* ``GET    /2010-04-01/Accounts/{AC}/Recordings.json``                       list recordings
  (``DateCreated>``/``DateCreated<``, ``CallSid``; paged with ``PageSize`` and ``PageToken``)
* ``GET    /2010-04-01/Accounts/{AC}/Recordings/{RE}.json``                  recording resource
* ``GET    /2010-04-01/Accounts/{AC}/Recordings/{RE}.wav`` (and ``.mp3``)     media
* ``DELETE /2010-04-01/Accounts/{AC}/Recordings/{RE}.json``                  delete
* ``POST   /2010-04-01/Accounts/{AC}/Messages.json``                         send an SMS
* ``POST   /2010-04-01/Accounts/{AC}/Calls.json``                            place a call
* ``GET    /2010-04-01/Accounts/{AC}/Calls.json``                            list calls
  (``Status``, ``StartTime>``/``StartTime<``; paged like recordings)
* ``GET    /2010-04-01/Accounts/{AC}/Calls/{CA}.json``                       call resource
* ``POST   /2010-04-01/Accounts/{AC}/Calls/{CA}.json``                       send it to other TwiML
* ``POST   /v2/Services/{VA}/Verifications`` and ``…/VerificationCheck``     Twilio Verify
* ``POST   /2010-04-01/Accounts/{AC}/Calls/{CA}/Payments.json``          start a payment
* ``POST   /2010-04-01/Accounts/{AC}/Calls/{CA}/Payments/{PK}.json``     capture / complete
  (agent-assisted Pay: the caller's keys go to the emulated connector; the status callbacks
  Twilio would send carry only the progress, masked values, the result and a token, and are
  queued for the caller driver to deliver: ``CallDriver.press_payment_keys``)
* ``POST``/``GET /v1/Credentials/PublicKeys``                               public keys
  (accounts.twilio.com: point the client's ``accounts.base_url`` here too)

Voice Recording Encryption, as Twilio does it: once a public key is chosen for it (``POST
/_emulator/recording-encryption`` with ``public_key_sid``, what the console's Voice settings
do; ``null`` turns it off), each recording completed after is encrypted with a random
AES-256-GCM content key (the media is the ciphertext followed by the 16-byte tag), the key
encrypted with that public key (RSAES-OAEP, SHA-256, MGF1-SHA-256), and the recording's
``encryption_details`` say so. ``flip_byte`` (an offset into the media as served; negative
counts from the end, -1 is the tag's last byte) changes one byte of it, as a damaged copy.

Faults can be asked for when a recording is completed (``POST
/_emulator/recordings/{RE}/complete`` with ``seconds`` and optionally ``trickle_seconds``: serve
the audio slowly over that long; ``fail_times``: answer 503 that many times first, or
``fail_status`` (401 or 404: media that lags the callback, as Twilio's may); ``cut_after``:
announce the full length but close after that many bytes; ``delete_seconds``: answer its DELETE
only after that long, as a slow Twilio does; ``delete_fail_times``: answer its DELETE 503 that
many times first).

The caller driver (``twilio_emulator.caller``) tells the emulator about calls through its
control endpoints under ``/_emulator/``; tests read its state there too.
"""

import base64
import contextlib
import io
import json
import math
import re
import secrets
import struct
import threading
import time
import wave
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

API = "/2010-04-01/Accounts/(?P<account>AC[0-9a-fA-F]{32})"
ROUTES = [
    ("POST", re.compile(API + r"/Calls/(?P<call>CA\w+)/Recordings\.json$"), "start_recording"),
    (
        "POST",
        re.compile(API + r"/Calls/(?P<call>CA\w+)/Recordings/(?P<rec>[\w.]+)\.json$"),
        "update_recording",
    ),
    ("GET", re.compile(API + r"/Recordings\.json$"), "list_recordings"),
    ("GET", re.compile(API + r"/Recordings/(?P<rec>RE\w+)\.json$"), "get_recording"),
    ("GET", re.compile(API + r"/Recordings/(?P<rec>RE\w+)\.(?P<fmt>wav|mp3)$"), "get_media"),
    ("DELETE", re.compile(API + r"/Recordings/(?P<rec>RE\w+)\.json$"), "delete_recording"),
    ("POST", re.compile(API + r"/Messages\.json$"), "send_message"),
    ("POST", re.compile(API + r"/Calls\.json$"), "create_call"),
    ("GET", re.compile(API + r"/Calls\.json$"), "list_calls"),
    ("GET", re.compile(API + r"/Calls/(?P<call>CA\w+)\.json$"), "get_call"),
    ("POST", re.compile(API + r"/Calls/(?P<call>CA\w+)\.json$"), "update_call"),
    ("POST", re.compile(API + r"/Calls/(?P<call>CA\w+)/Payments\.json$"), "create_payment"),
    (
        "POST",
        re.compile(API + r"/Calls/(?P<call>CA\w+)/Payments/(?P<payment>PK\w+)\.json$"),
        "update_payment",
    ),
]
# Twilio Verify (verify.twilio.com/v2), served on the same port: point the client's
# ``verify.base_url`` here too.
VERIFY_ROUTES = [
    (
        "POST",
        re.compile(r"/v2/Services/(?P<service>VA\w+)/Verifications$"),
        "start_verification",
    ),
    (
        "POST",
        re.compile(r"/v2/Services/(?P<service>VA\w+)/VerificationCheck$"),
        "check_verification",
    ),
]
# The Credentials API (accounts.twilio.com/v1), on the same port.
ACCOUNTS_ROUTES = [
    ("POST", re.compile(r"/v1/Credentials/PublicKeys$"), "create_public_key"),
    ("GET", re.compile(r"/v1/Credentials/PublicKeys$"), "list_public_keys"),
]
# The faults a recording's media or DELETE can be asked to answer: (Twilio error code, message).
FAULT_ANSWERS = {
    401: (20003, "Authentication Error - media not available yet (emulated)"),
    404: (20404, "The requested resource was not found (emulated)"),
    503: (20500, "Service Unavailable (emulated)"),
}
DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 50, 1000
PAGING = {"PageSize", "Page", "PageToken"}
RECORDING_TRANSITIONS = {
    "in-progress": {"paused", "stopped", "in-progress"},
    "paused": {"in-progress", "stopped", "paused"},
}


def new_sid(prefix):
    return prefix + secrets.token_hex(16)


def twilio_time(value):
    return format_datetime(value, usegmt=True) if value else None


def parse_filter_time(value):
    """A list filter's date: ``YYYY-MM-DD`` (midnight UTC) or ``YYYY-MM-DDTHH:MM:SSZ``."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as error:
        raise TwilioError(400, 20001, f"Invalid date {value!r}") from error
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def in_range(when, query, name):
    """Twilio's ``Name>`` (on or after) and ``Name<`` (on or before) filters."""
    if f"{name}>" in query and when < parse_filter_time(query[f"{name}>"]):
        return False
    return not (f"{name}<" in query and when > parse_filter_time(query[f"{name}<"]))


def synthetic_wav(seconds, *, rate=8000):
    """Two-channel 16-bit PCM: a tone per side, so each channel is recognisably different."""
    frames = io.BytesIO()
    with wave.open(frames, "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(rate)
        # One second of both tones, repeated: whole periods of 440 and 660 Hz at 8 kHz, so a
        # recording as long as a demo call (minutes) is made in milliseconds.
        second = bytearray()
        for n in range(rate):
            left = int(8000 * math.sin(2 * math.pi * 440 * n / rate))
            right = int(8000 * math.sin(2 * math.pi * 660 * n / rate))
            second += struct.pack("<hh", left, right)
        frames_wanted = int(seconds * rate)
        whole, part = divmod(frames_wanted, rate)
        out.writeframes(bytes(second) * whole + bytes(second[: part * 4]))
    return frames.getvalue()


def silenced(wav, recording, *, rate=8000):
    """``wav`` with silence where the recording was paused (Twilio's ``PauseBehavior``
    ``silence``): each pause's span, counted from the recording's start, is zeroed."""
    pauses = recording.get("pauses") or []
    if not pauses:
        return wav
    audio = bytearray(wav)
    header, frame = 44, 4  # the WAV header synthetic_wav writes; 2 channels × 16 bits
    frames = (len(audio) - header) // frame
    ended = datetime.now(UTC)
    for started, resumed in pauses:
        first = int((started - recording["created"]).total_seconds() * rate)
        last = int(((resumed or ended) - recording["created"]).total_seconds() * rate)
        first, last = max(0, min(first, frames)), max(0, min(last, frames))
        audio[header + first * frame : header + last * frame] = bytes((last - first) * frame)
    return bytes(audio)


class Media:
    """A recording's audio as served: optionally trickled over ``seconds`` or cut short."""

    def __init__(self, data, *, seconds=0, cut_after=None):
        self.data, self.seconds, self.cut_after = data, float(seconds), cut_after

    def write_to(self, out):
        data = self.data if self.cut_after is None else self.data[: self.cut_after]
        pieces = max(1, int(self.seconds * 20)) if self.seconds else 1
        step = -(-len(data) // pieces) or 1
        for start in range(0, len(data), step):
            out.write(data[start : start + step])
            out.flush()
            if self.seconds:
                time.sleep(self.seconds / pieces)


class TwilioError(Exception):
    def __init__(self, status, code, message):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class EmulatorState:
    """Accounts, calls and recordings, kept in memory. Thread-safe."""

    def __init__(self, account_sid, auth_token, base_url=""):
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.base_url = base_url
        self.calls = {}
        self.recordings = {}
        self.requests = []
        self.messages = []
        self.outbound_calls = []
        self.verifications = {}
        # Voice Recording Encryption: the account's public keys, and the one recordings are
        # encrypted with (None: recordings are not encrypted).
        self.public_keys = {}
        self.recording_encryption_key = None
        # ``python -m twilio_emulator --encrypt-recordings``: the key registered last is used.
        self.encrypt_with_newest_key = False
        # Agent-assisted payments, and the status callbacks Twilio would send about them.
        self.payments = {}
        self.payment_callbacks = []
        self.lock = threading.RLock()
        # Called with a line of text for what a person would see (an SMS, a call placed, a
        # Verify code); ``python -m twilio_emulator`` prints it.
        self.announce = lambda text: None

    # -- REST ---------------------------------------------------------------------------

    def recording_resource(self, recording):
        uri = f"/2010-04-01/Accounts/{self.account_sid}/Recordings/{recording['sid']}"
        return {
            "sid": recording["sid"],
            "account_sid": self.account_sid,
            "call_sid": recording["call_sid"],
            "status": recording["status"],
            "channels": 2,
            "source": recording["source"],
            "duration": str(recording["duration"]) if recording["duration"] is not None else None,
            "date_created": format_datetime(recording["created"], usegmt=True),
            "date_updated": format_datetime(datetime.now(UTC), usegmt=True),
            "start_time": format_datetime(recording["created"], usegmt=True),
            "uri": uri + ".json",
            "media_url": self.base_url + uri,
            "api_version": "2010-04-01",
            "price": None,
            "encryption_details": recording.get("encryption_details"),
        }

    def start_recording(self, *, call, source="StartCallRecordingAPI", **_):
        with self.lock:
            if call not in self.calls or self.calls[call]["status"] != "in-progress":
                raise TwilioError(400, 21220, f"Call {call} is not in progress.")
            recording = {
                "sid": new_sid("RE"),
                "call_sid": call,
                "status": "in-progress",
                "source": source,
                "duration": None,
                "created": datetime.now(UTC),
                "media": None,
                "deleted": False,
            }
            self.recordings[recording["sid"]] = recording
            self.calls[call]["recordings"].append(recording["sid"])
            return 201, self.recording_resource(recording)

    def find_recording(self, call, rec):
        if call not in self.calls:
            raise TwilioError(404, 20404, f"The requested resource Call {call} was not found")
        if rec == "Twilio.CURRENT":
            active = [
                self.recordings[sid]
                for sid in self.calls[call]["recordings"]
                if self.recordings[sid]["status"] in ("in-progress", "paused")
            ]
            if not active:
                raise TwilioError(404, 20404, f"No active recording on call {call}")
            return active[-1]
        recording = self.recordings.get(rec)
        if recording is None or recording["call_sid"] != call or recording["deleted"]:
            raise TwilioError(404, 20404, f"The requested resource Recording {rec} was not found")
        return recording

    def update_recording(self, *, call, rec, form, **_):
        status = form.get("Status", "")
        if status not in ("paused", "in-progress", "stopped"):
            raise TwilioError(400, 21220, "Status must be paused, in-progress or stopped.")
        with self.lock:
            recording = self.find_recording(call, rec)
            if status not in RECORDING_TRANSITIONS.get(recording["status"], set()):
                raise TwilioError(
                    400, 21220, f"Recording {recording['sid']} is {recording['status']}."
                )
            now = datetime.now(UTC)
            pauses = recording.setdefault("pauses", [])
            if status == "paused" and recording["status"] != "paused":
                pauses.append([now, None])
            elif status != "paused" and pauses and pauses[-1][1] is None:
                pauses[-1][1] = now
            recording["status"] = status
            recording["pause_behavior"] = form.get("PauseBehavior", "silence")
            return 200, self.recording_resource(recording)

    def stored_recording(self, rec):
        recording = self.recordings.get(rec)
        if recording is None or recording["deleted"]:
            raise TwilioError(404, 20404, f"The requested resource Recording {rec} was not found")
        return recording

    def get_recording(self, *, rec, **_):
        with self.lock:
            return 200, self.recording_resource(self.stored_recording(rec))

    def page(self, key, path, items, query):
        """One page of ``items`` (newest first) in Twilio's list shape; ``PageToken`` names the
        last item of the previous page, so items added meanwhile do not shift the pages."""
        try:
            size = min(MAX_PAGE_SIZE, max(1, int(query.get("PageSize", DEFAULT_PAGE_SIZE))))
            number = int(query.get("Page", 0))
        except ValueError as error:
            raise TwilioError(400, 20001, "Invalid paging parameter") from error
        start = 0
        if token := query.get("PageToken", "")[2:]:
            sids = [item["sid"] for item in items]
            start = sids.index(token) + 1 if token in sids else len(items)
        chunk = items[start : start + size]
        uri = f"/2010-04-01/Accounts/{self.account_sid}/{path}.json"
        filters = urlencode({k: v for k, v in query.items() if k not in PAGING})
        filters = f"&{filters}" if filters else ""
        first = f"{uri}?PageSize={size}&Page=0{filters}"
        following = None
        if start + size < len(items):
            following = (
                f"{uri}?PageSize={size}&Page={number + 1}{filters}&PageToken=PA{chunk[-1]['sid']}"
            )
        return 200, {
            key: chunk,
            "first_page_uri": first,
            "next_page_uri": following,
            "previous_page_uri": None,
            "page": number,
            "page_size": size,
            "start": start,
            "end": start + max(len(chunk) - 1, 0),
            "uri": f"{uri}?PageSize={size}&Page={number}{filters}",
        }

    def list_recordings(self, *, query, **_):
        with self.lock:
            found = [
                self.recording_resource(recording)
                for recording in sorted(
                    self.recordings.values(), key=lambda r: (r["created"], r["sid"]), reverse=True
                )
                if not recording["deleted"]
                and in_range(recording["created"], query, "DateCreated")
                and query.get("CallSid", recording["call_sid"]) == recording["call_sid"]
            ]
            return self.page("recordings", "Recordings", found, query)

    def call_resource(self, call):
        uri = f"/2010-04-01/Accounts/{self.account_sid}/Calls/{call['sid']}"
        return {
            "sid": call["sid"],
            "account_sid": self.account_sid,
            "parent_call_sid": call.get("parent_call_sid"),
            "to": call.get("to", ""),
            "to_formatted": call.get("to", ""),
            "from": call.get("from", ""),
            "from_formatted": call.get("from", ""),
            "status": call["status"],
            "direction": call.get("direction", "inbound"),
            "start_time": twilio_time(call.get("started")),
            "end_time": twilio_time(call.get("ended")),
            "duration": None if call.get("duration") is None else str(call["duration"]),
            "answered_by": None,
            "caller_name": None,
            "forwarded_from": None,
            "group_sid": None,
            "phone_number_sid": None,
            "price": None,
            "price_unit": "USD",
            "queue_time": "0",
            "trunk_sid": None,
            "api_version": "2010-04-01",
            "date_created": twilio_time(call.get("started")),
            "date_updated": twilio_time(datetime.now(UTC)),
            "uri": uri + ".json",
            "subresource_uris": {"recordings": uri + "/Recordings.json"},
        }

    def list_calls(self, *, query, **_):
        with self.lock:
            found = [
                self.call_resource(call)
                for call in sorted(
                    self.calls.values(), key=lambda c: (c["started"], c["sid"]), reverse=True
                )
                if in_range(call["started"], query, "StartTime")
                and query.get("Status", call["status"]) == call["status"]
            ]
            return self.page("calls", "Calls", found, query)

    def update_call(self, *, call, form, **_):
        """A live call sent to other TwiML (``Url``): the driver follows it
        (``CallDriver.follow_redirect``), as Twilio would at once."""
        with self.lock:
            if call not in self.calls or self.calls[call]["status"] != "in-progress":
                raise TwilioError(400, 21220, f"Call {call} is not in progress.")
            if not form.get("Url"):
                raise TwilioError(400, 21205, "Url is required.")
            self.calls[call]["redirect"] = {
                "url": form["Url"],
                "method": form.get("Method", "POST"),
            }
            return 200, self.call_resource(self.calls[call])

    def get_call(self, *, call, **_):
        with self.lock:
            if call not in self.calls:
                raise TwilioError(404, 20404, f"The requested resource Call {call} was not found")
            return 200, self.call_resource(self.calls[call])

    def get_media(self, *, rec, fmt, **_):
        with self.lock:
            recording = self.stored_recording(rec)
            if recording["media"] is None:
                raise TwilioError(404, 20404, f"Recording {rec} has no media yet")
            recording["media_requests"] = recording.get("media_requests", 0) + 1
            faults = recording.get("faults", {})
            if faults.get("fail_times", 0) > 0:
                faults["fail_times"] -= 1
                status = int(faults.get("fail_status", 503))
                raise TwilioError(status, *FAULT_ANSWERS.get(status, FAULT_ANSWERS[503]))
            return 200, Media(
                recording["media"],
                seconds=faults.get("trickle_seconds", 0),
                cut_after=faults.get("cut_after"),
            )

    def delete_recording(self, *, rec, **_):
        with self.lock:
            faults = self.stored_recording(rec).get("faults", {})
            delay = faults.get("delete_seconds", 0)
            if faults.get("delete_fail_times", 0) > 0:
                faults["delete_fail_times"] -= 1
                raise TwilioError(503, *FAULT_ANSWERS[503])
        time.sleep(float(delay))  # outside the lock: other requests are answered meanwhile
        with self.lock:
            self.stored_recording(rec)["deleted"] = True
            return 204, None

    def send_message(self, *, form, **_):
        to, body = form.get("To", ""), form.get("Body", "")
        sender = form.get("From") or form.get("MessagingServiceSid", "")
        if not re.fullmatch(r"\+[1-9]\d{6,14}", to):
            raise TwilioError(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if not sender:
            raise TwilioError(400, 21603, "A 'From' phone number is required.")
        if not body:
            raise TwilioError(400, 21602, "Message body is required.")
        with self.lock:
            message = {
                "sid": new_sid("SM"),
                "account_sid": self.account_sid,
                "to": to,
                "from": sender,
                "body": body,
                "status": "queued",
                "num_segments": "1",
                "direction": "outbound-api",
                "date_created": format_datetime(datetime.now(UTC), usegmt=True),
                "api_version": "2010-04-01",
                "price": None,
                "error_code": None,
                "error_message": None,
                "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages.json",
            }
            self.messages.append(message)
        self.announce(f"SMS to {to}: {body}")
        return 201, message

    def create_call(self, *, form, **_):
        to = form.get("To", "")
        if not re.fullmatch(r"\+[1-9]\d{6,14}", to):
            raise TwilioError(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if not (form.get("Url") or form.get("Twiml")):
            raise TwilioError(400, 21205, "Either Url or Twiml is required.")
        with self.lock:
            call = {
                "sid": new_sid("CA"),
                "account_sid": self.account_sid,
                "to": to,
                "from": form.get("From", ""),
                "status": "queued",
                "direction": "outbound-api",
                "url": form.get("Url"),
                "twiml": form.get("Twiml"),
                "api_version": "2010-04-01",
                "date_created": format_datetime(datetime.now(UTC), usegmt=True),
                "uri": f"/2010-04-01/Accounts/{self.account_sid}/Calls.json",
            }
            self.outbound_calls.append(call)
        self.announce(f"Call to {to}: {call['url'] or call['twiml']}")
        return 201, call

    def verification_resource(self, service, verification):
        return {
            "sid": verification["sid"],
            "service_sid": service,
            "account_sid": self.account_sid,
            "to": verification["to"],
            "channel": verification["channel"],
            "status": verification["status"],
            "valid": verification["status"] == "approved",
            "date_created": verification["created"],
            "date_updated": verification["created"],
            "url": f"https://verify.twilio.com/v2/Services/{service}/Verifications/"
            + verification["sid"],
        }

    def start_verification(self, *, service, form, **_):
        to, channel = form.get("To", ""), form.get("Channel", "")
        if channel not in ("sms", "call"):
            raise TwilioError(400, 60200, "Invalid parameter: Channel")
        with self.lock:
            verification = {
                "sid": new_sid("VE"),
                "to": to,
                "channel": channel,
                "status": "pending",
                "code": f"{secrets.randbelow(10**6):06d}",
                "attempts": 0,
                "created": datetime.now(UTC).isoformat(),
            }
            self.verifications[(service, to)] = verification
        self.announce(f"Verify code for {to} by {channel}: {verification['code']}")
        return 201, self.verification_resource(service, verification)

    def check_verification(self, *, service, form, **_):
        to, code = form.get("To", ""), form.get("Code", "")
        with self.lock:
            verification = self.verifications.get((service, to))
            if verification is None or verification["status"] != "pending":
                raise TwilioError(404, 20404, "The requested resource was not found")
            verification["attempts"] += 1
            if secrets.compare_digest(code, verification["code"]):
                verification["status"] = "approved"
            elif verification["attempts"] >= 5:
                verification["status"] = "max_attempts_reached"
            return 200, self.verification_resource(service, verification)

    # -- control, used by the caller driver and tests --------------------------------------

    # -- agent-assisted payments (Pay) ------------------------------------------------------

    PAYMENT_PARTS = ("payment-card-number", "expiration-date", "security-code")

    def payment_resource(self, payment):
        uri = f"/2010-04-01/Accounts/{self.account_sid}/Calls/{payment['call_sid']}"
        return {
            "sid": payment["sid"],
            "account_sid": self.account_sid,
            "call_sid": payment["call_sid"],
            "date_created": twilio_time(payment["created"]),
            "date_updated": twilio_time(datetime.now(UTC)),
            "uri": f"{uri}/Payments/{payment['sid']}.json",
        }

    def _payment_callback(self, payment, **params):
        self.payment_callbacks.append(
            (
                payment["status_callback"],
                {
                    "AccountSid": self.account_sid,
                    "CallSid": payment["call_sid"],
                    "Sid": payment["sid"],
                    "Required": ",".join(
                        part for part in self.PAYMENT_PARTS if part not in payment["captured"]
                    ),
                    **params,
                },
            )
        )

    def create_payment(self, *, call, form, **_):
        with self.lock:
            if call not in self.calls or self.calls[call]["status"] != "in-progress":
                raise TwilioError(400, 64001, f"Call {call} is not in progress.")
            for name in ("IdempotencyKey", "StatusCallback", "PaymentConnector"):
                if not form.get(name):
                    raise TwilioError(400, 64004, f"{name} is required.")
            payment = {
                "sid": new_sid("PK"),
                "call_sid": call,
                "status_callback": form["StatusCallback"],
                "connector": form["PaymentConnector"],
                "charge_amount": form.get("ChargeAmount", ""),
                "currency": form.get("Currency", ""),
                "token_type": form.get("TokenType", ""),
                "description": form.get("Description", ""),
                "capture": None,
                "captured": {},
                "status": "in-progress",
                "created": datetime.now(UTC),
            }
            self.payments[payment["sid"]] = payment
            self._payment_callback(payment, PaymentMethod="credit-card")
            return 201, self.payment_resource(payment)

    def update_payment(self, *, call, payment, form, **_):
        with self.lock:
            found = self.payments.get(payment)
            if found is None or found["call_sid"] != call:
                raise TwilioError(404, 20404, f"Payment {payment} was not found")
            if found["status"] != "in-progress":
                raise TwilioError(400, 64010, f"Payment {payment} has ended")
            capture, status = form.get("Capture"), form.get("Status")
            if capture:
                if capture not in self.PAYMENT_PARTS:
                    raise TwilioError(400, 64005, f"Capture {capture} is not supported")
                found["capture"] = capture
                self._payment_callback(found, Capture=capture)
            elif status == "complete":
                missing = [part for part in self.PAYMENT_PARTS if part not in found["captured"]]
                found["status"] = "complete"
                if missing:
                    self._payment_callback(
                        found, Result="validation-error", PaymentError="missing " + missing[0]
                    )
                else:
                    self._payment_callback(
                        found,
                        Result="success",
                        PaymentToken="tok_" + secrets.token_hex(8),
                        PaymentConfirmationCode="ch_" + secrets.token_hex(8),
                        PaymentCardType="visa",
                    )
            elif status == "cancel":
                found["status"] = "cancel"
                self._payment_callback(found, Result="payment-cancelled")
            else:
                raise TwilioError(400, 64006, "Give Capture or Status (complete or cancel).")
            return 200, self.payment_resource(found)

    def press_payment_keys(self, payment_sid, keys):
        """The caller keys ``keys`` for the part the payment is capturing now: they go to the
        connector; the callback says only what Twilio says of them (masked)."""
        with self.lock:
            payment = self.payments[payment_sid]
            capture = payment["capture"]
            if capture is None:
                raise TwilioError(400, 64007, "Nothing is being captured")
            payment["captured"][capture] = keys
            payment["capture"] = None
            shown = {
                "payment-card-number": {
                    "PaymentCardNumber": "x" * (len(keys) - 4) + keys[-4:],
                    "PaymentCardType": "visa",
                },
                "expiration-date": {"ExpirationDate": keys},
                "security-code": {"SecurityCode": "x" * len(keys)},
            }[capture]
            self._payment_callback(payment, Capture=capture, PartialResult="false", **shown)

    def take_payment_callbacks(self):
        with self.lock:
            callbacks, self.payment_callbacks = self.payment_callbacks, []
            return callbacks

    # -- Voice Recording Encryption --------------------------------------------------------

    def encryption_key_sid(self):
        """The public key recordings are encrypted with now, or None."""
        if self.recording_encryption_key is not None:
            return self.recording_encryption_key
        if self.encrypt_with_newest_key and self.public_keys:
            return list(self.public_keys)[-1]
        return None

    def encrypt_media(self, recording):
        """Encrypt a completed recording's media as Twilio does with the chosen public key."""
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import padding
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        sid = self.encryption_key_sid()
        public_key = serialization.load_pem_public_key(self.public_keys[sid]["pem"].encode())
        content_key, iv = AESGCM.generate_key(bit_length=256), secrets.token_bytes(12)
        recording["media"] = AESGCM(content_key).encrypt(iv, recording["media"], None)
        encrypted_cek = public_key.encrypt(
            content_key,
            padding.OAEP(
                mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None
            ),
        )
        recording["encryption_details"] = {
            "type": "rsa-aes",
            "public_key_sid": sid,
            "encrypted_cek": base64.b64encode(encrypted_cek).decode(),
            "iv": base64.b64encode(iv).decode(),
        }

    def public_key_resource(self, key):
        return {
            "sid": key["sid"],
            "account_sid": self.account_sid,
            "friendly_name": key["friendly_name"],
            "date_created": key["date_created"].isoformat().replace("+00:00", "Z"),
            "url": f"{self.base_url}/v1/Credentials/PublicKeys/{key['sid']}",
        }

    def create_public_key(self, *, form, **_):
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        pem = form.get("PublicKey", "")
        try:
            key = serialization.load_pem_public_key(pem.encode())
        except ValueError:
            key = None
        if not isinstance(key, rsa.RSAPublicKey):
            raise TwilioError(400, 70154, "Public Key is invalid")
        with self.lock:
            created = {
                "sid": new_sid("CR"),
                "friendly_name": form.get("FriendlyName", ""),
                "pem": pem,
                "date_created": datetime.now(UTC).replace(microsecond=0),
            }
            self.public_keys[created["sid"]] = created
            return 201, self.public_key_resource(created)

    def list_public_keys(self, **_):
        with self.lock:
            keys = sorted(self.public_keys.values(), key=lambda k: k["date_created"], reverse=True)
            return 200, {
                "credentials": [self.public_key_resource(key) for key in keys],
                "meta": {
                    "page": 0,
                    "page_size": len(keys),
                    "first_page_url": f"{self.base_url}/v1/Credentials/PublicKeys?Page=0",
                    "previous_page_url": None,
                    "url": f"{self.base_url}/v1/Credentials/PublicKeys?Page=0",
                    "next_page_url": None,
                    "key": "credentials",
                },
            }

    def control(self, method, path, body):
        with self.lock:
            if method == "POST" and path == "/_emulator/calls":
                call = {
                    "sid": body.get("sid") or new_sid("CA"),
                    "status": "in-progress",
                    "from": body.get("from", ""),
                    "to": body.get("to", ""),
                    "direction": body.get("direction", "inbound"),
                    "started": datetime.now(UTC),
                    "ended": None,
                    "duration": None,
                    "recordings": [],
                }
                self.calls[call["sid"]] = call
                return 201, call
            match = re.fullmatch(r"/_emulator/calls/(CA\w+)/recordings", path)
            if method == "POST" and match:
                return self.start_recording(
                    call=match.group(1), source=body.get("source", "DialVerb")
                )
            match = re.fullmatch(r"/_emulator/recordings/(RE\w+)/complete", path)
            if method == "POST" and match:
                recording = self.recordings[match.group(1)]
                seconds = float(body.get("seconds", 3))
                recording.update(
                    status="completed",
                    duration=round(seconds),
                    media=silenced(synthetic_wav(seconds), recording),
                )
                if self.encryption_key_sid() is not None:
                    self.encrypt_media(recording)
                if "flip_byte" in body:
                    media = bytearray(recording["media"])
                    media[int(body["flip_byte"])] ^= 0x01
                    recording["media"] = bytes(media)
                recording["faults"] = {
                    key: body[key]
                    for key in (
                        "trickle_seconds",
                        "fail_times",
                        "fail_status",
                        "cut_after",
                        "delete_seconds",
                        "delete_fail_times",
                    )
                    if key in body
                }
                return 200, self.recording_resource(recording)
            match = re.fullmatch(r"/_emulator/calls/(CA\w+)/hangup", path)
            if method == "POST" and match:
                # ``status`` (completed, busy, no-answer…) and ``duration`` as Twilio reports
                # them; by default the call lasted from its start until now.
                call = self.calls[match.group(1)]
                call["ended"] = datetime.now(UTC)
                call["status"] = body.get("status", "completed")
                call["duration"] = int(
                    body.get("duration", (call["ended"] - call["started"]).total_seconds())
                )
                return 200, call
            if method == "GET" and path == "/_emulator/state":
                return 200, {
                    "calls": self.calls,
                    "recordings": {
                        sid: {
                            **{k: v for k, v in r.items() if k not in ("media", "created")},
                            "media_size": len(r["media"] or b""),
                        }
                        for sid, r in self.recordings.items()
                    },
                    "requests": self.requests,
                    "messages": self.messages,
                    "outbound_calls": self.outbound_calls,
                    "verifications": {
                        f"{service} {to}": v for (service, to), v in self.verifications.items()
                    },
                }
            match = re.fullmatch(r"/_emulator/payments/(PK\w+)/keys", path)
            if method == "POST" and match:
                self.press_payment_keys(match.group(1), str(body.get("keys", "")))
                return 200, {"callbacks": self.take_payment_callbacks()}
            if method == "POST" and path == "/_emulator/payment-callbacks":
                return 200, {"callbacks": self.take_payment_callbacks()}
            if method == "POST" and path == "/_emulator/recording-encryption":
                sid = body.get("public_key_sid")
                if sid is not None and sid not in self.public_keys:
                    raise TwilioError(400, 20001, f"Public key {sid} is not on the account")
                self.recording_encryption_key = sid
                return 200, {"public_key_sid": sid}
            if method == "POST" and path == "/_emulator/reset":
                self.calls.clear()
                self.recordings.clear()
                self.requests.clear()
                self.messages.clear()
                self.outbound_calls.clear()
                self.verifications.clear()
                self.public_keys.clear()
                self.recording_encryption_key = None
                self.payments.clear()
                self.payment_callbacks.clear()
                return 200, {}
        raise TwilioError(404, 20404, f"Unknown emulator control {method} {path}")


class Handler(BaseHTTPRequestHandler):
    server_version = "TwilioEmulator/1.0"
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # keep test output quiet
        pass

    @property
    def state(self):
        return self.server.state

    def do_GET(self):
        self.handle_request("GET")

    def do_POST(self):
        self.handle_request("POST")

    def do_DELETE(self):
        self.handle_request("DELETE")

    def handle_request(self, method):
        path = urlsplit(self.path).path
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            if path.startswith("/_emulator/"):
                body = json.loads(raw or b"{}")
                status, payload = self.state.control(method, path, body)
                return self.reply(status, payload)
            form = {k: v[-1] for k, v in parse_qs(raw.decode()).items()}
            query = {k: v[-1] for k, v in parse_qs(urlsplit(self.path).query).items()}
            with self.state.lock:
                self.state.requests.append(
                    {"method": method, "path": path, "form": form, "query": query}
                )
            self.authenticate()
            for route_method, pattern, action in ROUTES + VERIFY_ROUTES + ACCOUNTS_ROUTES:
                match = pattern.match(path)
                if match and route_method == method:
                    if match.groupdict().get("account", self.state.account_sid) != (
                        self.state.account_sid
                    ):
                        raise TwilioError(404, 20404, "Account not found")
                    status, payload = getattr(self.state, action)(
                        form=form, query=query, **match.groupdict()
                    )
                    return self.reply(status, payload)
            raise TwilioError(404, 20404, f"The requested resource {path} was not found")
        except TwilioError as error:
            self.reply(
                error.status,
                {
                    "code": error.code,
                    "message": error.message,
                    "more_info": f"https://www.twilio.com/docs/errors/{error.code}",
                    "status": error.status,
                },
            )

    def authenticate(self):
        expected = f"{self.state.account_sid}:{self.state.auth_token}".encode()
        header = self.headers.get("Authorization", "")
        given = base64.b64decode(header[6:]) if header.startswith("Basic ") else b""
        if not secrets.compare_digest(given, expected):
            raise TwilioError(401, 20003, "Authentication Error - invalid username")

    def reply(self, status, payload):
        if isinstance(payload, Media):
            self.send_response(status)
            self.send_header("Content-Type", "audio/x-wav")
            self.send_header("Content-Length", str(len(payload.data)))
            self.end_headers()
            # The client may go away mid-download (a killed worker).
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                payload.write_to(self.wfile)
            if payload.cut_after is not None:
                self.close_connection = True
            return
        if isinstance(payload, bytes):
            body, content_type = payload, "audio/x-wav"
        elif payload is None:
            body, content_type = b"", "application/json"
        else:
            body, content_type = json.dumps(payload, default=str).encode(), "application/json"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)


class Emulator:
    """The emulator's HTTP server, run in a background thread (``with Emulator(...) as e:``)."""

    def __init__(self, *, account_sid, auth_token, host="127.0.0.1", port=0):
        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        host, port = self.server.server_address[:2]
        self.url = f"http://{host}:{port}"
        self.server.state = EmulatorState(account_sid, auth_token, base_url=self.url)
        # A short poll interval makes stop() quick (the default waits up to half a second).
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def state(self):
        return self.server.state

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
