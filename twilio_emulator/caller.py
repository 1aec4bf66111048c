"""Plays Twilio's part in a call: sends the app correctly signed webhooks and follows its TwiML.

incoming → (announcement, question) → digits → ``<Dial>`` → an operator answers → status
callbacks → recording callbacks, with the recording media kept by the emulator so the app can
fetch it later. Keypresses are given per question: ``"1"``, ``"2"``, ``""`` (no answer) or
``"91"`` (9 for English, then 1).
"""

import secrets
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from urllib.parse import urldefrag

import requests
from twilio.request_validator import RequestValidator


@dataclass
class CallResult:
    call_sid: str
    transcript: list = field(default_factory=list)  # (language, text) the caller heard
    documents: list = field(default_factory=list)  # every TwiML document, as text
    exchanges: list = field(default_factory=list)  # (url, HTTP status) of every webhook
    record_requested: bool = False
    recording_sid: str | None = None
    answered_by: str | None = None  # the routing address that took the call
    dial: ET.Element | None = None
    hung_up: bool = False
    pay: dict | None = None  # the attributes of the last <Pay> played
    earlier_recordings: list = field(default_factory=list)  # recordings of earlier <Dial>s


class CallDriver:
    """``drop_callbacks`` names the callbacks Twilio gave up on (never reach the app):
    ``"status"`` (the call's), ``"leg"`` (an operator's leg), ``"recording"``, each alone or
    with one status, e.g. ``"status:completed"``."""

    def __init__(
        self,
        *,
        app_url,
        public_base_url,
        account_sid,
        auth_token,
        emulator_url,
        session=None,
        drop_callbacks=(),
    ):
        self.app_url = app_url.rstrip("/")
        self.public_base_url = public_base_url.rstrip("/")
        self.account_sid = account_sid
        self.validator = RequestValidator(auth_token)
        self.emulator_url = emulator_url.rstrip("/")
        self.http = session or requests.Session()
        self.sequence = {}
        self.drop_callbacks = frozenset(drop_callbacks)
        self.dropped = []  # (kind, status, CallSid) of every callback not sent

    def drops(self, kind, status, call_sid):
        """Is this callback one Twilio gave up on? Noted if so."""
        dropped = bool({kind, f"{kind}:{status}"} & self.drop_callbacks)
        if dropped:
            self.dropped.append((kind, status, call_sid))
        return dropped

    # -- HTTP ---------------------------------------------------------------------------

    def signed_post(self, url, params, *, signature=None):
        """POST ``params`` to ``url`` (a public URL) signed as Twilio would sign it: without
        its fragment (connection overrides such as ``#rc=5``), which Twilio strips."""
        url = urldefrag(url).url
        if url.startswith("/"):
            url = self.public_base_url + url
        signature = signature or self.validator.compute_signature(url, params)
        target = self.app_url + url[len(self.public_base_url) :]
        return self.http.post(
            target,
            data=params,
            headers={
                "X-Twilio-Signature": signature,
                "I-Twilio-Idempotency-Token": secrets.token_hex(16),
                "User-Agent": "TwilioProxy/1.1",
            },
            timeout=15,
            allow_redirects=False,
        )

    def control(self, path, **body):
        response = self.http.post(self.emulator_url + path, json=body, timeout=10)
        response.raise_for_status()
        return response.json()

    def press_payment_keys(self, payment_sid, keys):
        """The caller keys ``keys`` on the keypad for the part of the card the payment asks
        for now; the status callbacks Twilio sends about it reach the app. Returns them."""
        callbacks = self.control(f"/_emulator/payments/{payment_sid}/keys", keys=keys)
        return self.deliver_payment_callbacks(callbacks["callbacks"])

    def deliver_payment_callbacks(self, callbacks=None):
        """Send the payment status callbacks Twilio has queued (all of them by default)."""
        if callbacks is None:
            callbacks = self.control("/_emulator/payment-callbacks")["callbacks"]
        return [
            (url, params, self.signed_post(url, params).status_code) for url, params in callbacks
        ]

    def base_params(self, call_sid, status, **extra):
        return {
            "AccountSid": self.account_sid,
            "CallSid": call_sid,
            "CallStatus": status,
            "ApiVersion": "2010-04-01",
            "Direction": "inbound",
            **extra,
        }

    def status_callback(self, result, status, **extra):
        sequence = self.sequence.get(result.call_sid, -1) + 1
        self.sequence[result.call_sid] = sequence
        if self.drops("status", status, result.call_sid):
            return None
        params = self.base_params(
            result.call_sid,
            status,
            SequenceNumber=str(sequence),
            Timestamp=format_datetime(datetime.now(UTC), usegmt=True),
            CallbackSource="call-progress-events",
            **extra,
        )
        url = self.public_base_url + "/twilio/voice/status"
        response = self.signed_post(url, params)
        result.exchanges.append((url, response.status_code))
        return response

    # -- the call -----------------------------------------------------------------------

    def run(
        self,
        *,
        digits="1",
        from_number="+81312345678",
        to_number="+815012345678",
        talk_seconds=3,
        hold=False,
        media_faults=None,
    ):
        """Make one call. With ``hold`` it stays connected until ``hang_up`` is called.

        ``media_faults`` is passed to the emulator with the recording's audio (see
        ``twilio_emulator.server``: ``trickle_seconds``, ``fail_times``, ``cut_after``).
        """
        presses = list(digits)
        call = self.control("/_emulator/calls", **{"from": from_number, "to": to_number})
        result = CallResult(call_sid=call["sid"])
        self.caller = {
            "From": from_number,
            "To": to_number,
            "Caller": from_number,
            "Called": to_number,
        }
        params = self.base_params(result.call_sid, "ringing", **self.caller)
        url = self.public_base_url + "/twilio/voice/incoming"
        while url:
            response = self.signed_post(url, params)
            result.exchanges.append((url, response.status_code))
            if response.status_code != 200:
                raise RuntimeError(f"{url} answered {response.status_code}: {response.text}")
            url, params = self.follow(result, response.text, presses)
        if result.dial is not None:
            self.answer(result)
            if not hold:
                self.hang_up(result, talk_seconds=talk_seconds, media_faults=media_faults)
        else:
            self.end(result, talk_seconds=0)
        return result

    def follow(self, result, twiml, presses, *, card=None):
        """Play one TwiML document; return the next webhook to call, if any."""
        result.documents.append(twiml)
        root = ET.fromstring(twiml)
        for verb in root:
            if verb.tag == "Say":
                result.transcript.append((verb.get("language"), verb.text or ""))
            elif verb.tag == "Gather":
                for inner in verb:
                    if inner.tag == "Say":
                        result.transcript.append((inner.get("language"), inner.text or ""))
                pressed = presses.pop(0) if presses else ""
                if pressed:
                    return verb.get("action"), self.base_params(
                        result.call_sid,
                        "in-progress",
                        Digits=pressed,
                        FinishedOnKey="",
                        **self.caller,
                    )
            elif verb.tag == "Redirect":
                return verb.text, self.base_params(result.call_sid, "in-progress", **self.caller)
            elif verb.tag == "Dial":
                result.dial = verb
                result.record_requested = "record" in verb.attrib
                return None, None
            elif verb.tag == "Pay":
                return self.pay(result, verb, card)
            elif verb.tag == "Hangup":
                return None, None
        return None, None

    def follow_redirect(self, result, *, card=None, talk_seconds=3):
        """Twilio follows a redirect of the call (``calls(sid).update(url=…)``): the ``<Dial>``
        ends with its recording and the operator's leg, then the new TwiML is played. A
        ``<Pay>`` there is the caller keying ``card`` (number, expiry, security code; None:
        they give up), with only what Twilio says of it sent to its action URL."""
        redirect = (
            self.http.get(f"{self.emulator_url}/_emulator/state", timeout=10)
            .json()["calls"][result.call_sid]
            .get("redirect")
        )
        if not redirect:
            raise RuntimeError(f"call {result.call_sid} was not redirected")
        self._end_dial(result, talk_seconds=talk_seconds)
        url, params = (
            redirect["url"],
            self.base_params(result.call_sid, "in-progress", **self.caller),
        )
        while url:
            response = self.signed_post(url, params)
            result.exchanges.append((url, response.status_code))
            if response.status_code != 200:
                raise RuntimeError(f"{url} answered {response.status_code}: {response.text}")
            url, params = self.follow(result, response.text, [], card=card)
        if result.dial is not None:
            self.answer(result)
        return result

    def _end_dial(self, result, *, talk_seconds):
        if result.recording_sid:
            recording = self.control(
                f"/_emulator/recordings/{result.recording_sid}/complete", seconds=talk_seconds
            )
            self.recording_callback(result, recording, "completed")
            result.earlier_recordings.append(result.recording_sid)
            result.recording_sid = None
        leg = result.dial[0]
        if leg.get("statusCallback"):
            child = self.base_params(
                result.child_sid,
                "completed",
                ParentCallSid=result.call_sid,
                Direction="outbound-dial",
                CallDuration=str(round(talk_seconds)),
            )
            self.signed_post(leg.get("statusCallback"), child)
        result.dial = None

    def pay(self, result, verb, card):
        """Play ``<Pay>``: the caller keys the card; the action URL hears the result, a token
        and the card as Twilio masks it (the number's last four digits, the expiry)."""
        result.pay = dict(verb.attrib)
        params = self.base_params(result.call_sid, "in-progress", **self.caller)
        if card is None:
            params.update(Result="too-many-failed-attempts", PaymentError="no input")
        else:
            number, expiry, _code = card
            params.update(
                Result="success",
                PaymentToken="tok_" + secrets.token_hex(8),
                PaymentConfirmationCode="ch_" + secrets.token_hex(8),
                PaymentCardNumber="x" * (len(number) - 4) + number[-4:],
                PaymentCardType="visa",
                ExpirationDate=expiry,
                SecurityCode="xxx",
            )
        return verb.get("action"), params

    def answer(self, result):
        """The first operator in the ``<Dial>`` picks up."""
        leg = result.dial[0]
        result.answered_by = leg.text
        child = self.base_params(
            "CA" + secrets.token_hex(16),
            "in-progress",
            ParentCallSid=result.call_sid,
            Direction="outbound-dial",
            To=leg.text,
            From=self.caller["From"],
        )
        if leg.get("statusCallback") and not self.drops("leg", "in-progress", result.call_sid):
            response = self.signed_post(leg.get("statusCallback"), child)
            result.exchanges.append((leg.get("statusCallback"), response.status_code))
        result.child_sid = child["CallSid"]
        self.status_callback(result, "in-progress")
        if result.record_requested:
            recording = self.control(
                f"/_emulator/calls/{result.call_sid}/recordings", source="DialVerb"
            )
            result.recording_sid = recording["sid"]
            self.recording_callback(result, recording, "in-progress")

    def recording_callback(self, result, recording, status):
        events = result.dial.get("recordingStatusCallbackEvent", "completed").split()
        url = result.dial.get("recordingStatusCallback")
        if not url or status not in events or self.drops("recording", status, result.call_sid):
            return
        params = {
            "AccountSid": self.account_sid,
            "CallSid": result.call_sid,
            "RecordingSid": recording["sid"],
            "RecordingUrl": recording["media_url"],
            "RecordingStatus": status,
            "RecordingChannels": "2",
            "RecordingSource": recording["source"],
            "RecordingStartTime": recording["start_time"],
            "RecordingTrack": "both",
        }
        if status == "completed":
            params["RecordingDuration"] = recording["duration"]
        response = self.signed_post(url, params)
        result.exchanges.append((url, response.status_code))

    def hang_up(self, result, *, talk_seconds=3, media_faults=None):
        if result.recording_sid:
            recording = self.control(
                f"/_emulator/recordings/{result.recording_sid}/complete",
                seconds=talk_seconds,
                **(media_faults or {}),
            )
            self.recording_callback(result, recording, "completed")
        leg = result.dial[0]
        if leg.get("statusCallback") and not self.drops("leg", "completed", result.call_sid):
            child = self.base_params(
                result.child_sid,
                "completed",
                ParentCallSid=result.call_sid,
                Direction="outbound-dial",
                CallDuration=str(round(talk_seconds)),
            )
            self.signed_post(leg.get("statusCallback"), child)
        self.end(result, talk_seconds=talk_seconds)

    def end(self, result, *, talk_seconds):
        duration = round(talk_seconds) + 20
        self.control(f"/_emulator/calls/{result.call_sid}/hangup", duration=duration)
        self.status_callback(result, "completed", CallDuration=str(duration))
        result.hung_up = True
