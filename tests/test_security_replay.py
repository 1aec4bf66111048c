"""Issue 14, row 6 and the portal half of row 7: a captured request or link replayed.

* A signed consent answer replayed with a new ``I-Twilio-Idempotency-Token`` (a header
  Twilio's signature does not cover) writes nothing new: the answer is idempotent on what
  Twilio signs (the CallSid, and the prompt's attempt in the signed URL).
* A consent answer for a call that has ended changes nothing: valid TwiML that hangs up,
  no consent record, no move of the call's recording state.
* The audio URL Twilio fetches to play a recording in the call we place serves that one
  playback (its HEAD and Range follow-ups from the same address, within two minutes) and is
  refused — and the refusal audited — afterwards.
* "Finish" in the portal ends the audio access of the listening pages that browser opened.
"""

import re
import secrets
from datetime import timedelta

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from audit.models import AccessEvent
from consent.models import ConsentRecord
from contactcenter.models import Call, CallEvent
from portal import requests
from portal.models import CustomerRequest, ListeningLink, PhonePlay
from recordings import access
from twilio_emulator.server import synthetic_wav

from . import factories
from .helpers.staff import acknowledged_operator
from .helpers.webhooks import incoming_call, parse_twiml, twilio_post

pytestmark = pytest.mark.django_db

Action = AccessEvent.Action
CALL_SID = "CA" + "6" * 32
INCOMING = "/twilio/voice/incoming"
CONSENT = "/twilio/voice/consent"
STATUS = "/twilio/voice/status"
RECORDING_STATUS = "/twilio/recordings/status"
REPLAYS = 10


def call_params(**extra):
    return incoming_call(CALL_SID, **extra)


parse = parse_twiml


def press(client, notice, digits, *, token):
    """Twilio's signed POST of the consent answer; only the unsigned header changes."""
    params = call_params(CallStatus="in-progress", Digits=digits)
    query = f"notice={notice.version}&lang=ja&attempt=1"
    return twilio_post(client, CONSENT, params, query=query, token=token)


def end_call(client):
    twilio_post(
        client,
        STATUS,
        call_params(CallStatus="completed", SequenceNumber="3", CallDuration="40"),
    )


@pytest.fixture
def operators(db):
    return [acknowledged_operator("op-replay")]


def test_a_signed_answer_replayed_with_new_idempotency_headers_writes_one_record(
    client, notice, operators
):
    twilio_post(client, INCOMING, call_params())

    answers = [press(client, notice, "1", token=f"token-{n}") for n in range(REPLAYS)]

    assert [response.status_code for response in answers] == [200] * REPLAYS
    for response in answers:
        parse(response)
    [record] = ConsentRecord.objects.filter(call__sid=CALL_SID)
    assert record.decision == ConsentRecord.Decision.GRANTED
    assert record.source_request["idempotency_token"] == "token-0"


def test_an_answer_replayed_after_the_call_ended_changes_nothing(client, notice, operators):
    twilio_post(client, INCOMING, call_params())
    parse(press(client, notice, "1", token="first"))
    # Twilio found nothing to record (no operator answered), then the caller hung up.
    twilio_post(
        client,
        RECORDING_STATUS,
        {
            "AccountSid": settings.TWILIO_ACCOUNT_SID,
            "CallSid": CALL_SID,
            "RecordingSid": "RE" + "6" * 32,
            "RecordingStatus": "absent",
        },
    )
    end_call(client)
    call = Call.objects.get(sid=CALL_SID)
    assert (call.status, call.recording_state) == ("completed", "not_recorded")
    records, events = ConsentRecord.objects.count(), CallEvent.objects.count()

    replies = [parse(press(client, notice, "1", token=f"replay-{n}")) for n in range(REPLAYS)]

    for root in replies:
        assert [element.tag for element in root] == ["Hangup"]
    after = Call.objects.get(sid=CALL_SID)
    assert (after.status, after.recording_state, after.missed, after.language) == (
        call.status,
        call.recording_state,
        call.missed,
        call.language,
    )
    assert ConsentRecord.objects.count() - records == 0
    assert CallEvent.objects.count() - events == 0


def test_a_first_answer_after_the_call_ended_writes_no_record(client, notice, operators):
    twilio_post(client, INCOMING, call_params())
    end_call(client)

    root = parse(press(client, notice, "2", token="late"))

    assert [element.tag for element in root] == ["Hangup"]
    assert not ConsentRecord.objects.filter(call__sid=CALL_SID).exists()
    assert Call.objects.get(sid=CALL_SID).recording_state == Call.RecordingState.NOT_RECORDED


# --- the portal ----------------------------------------------------------------------------

AUDIO = synthetic_wav(1)
NUMBER = "+819011112222"


@pytest.fixture
def recording(notice, operator):
    recording = factories.stored_recording(operator, audio=AUDIO)
    customer = recording.call.customer
    customer.phone_number = NUMBER
    customer.save()
    return recording


def granted_link(recording):
    """A granted request's listening link; returns ``(link, token)``."""
    made = CustomerRequest.objects.create(
        phone_number=NUMBER,
        kind=CustomerRequest.Kind.HEAR,
        due_at=timezone.now() + timedelta(days=7),
        status=CustomerRequest.Status.DONE,
    )
    token = secrets.token_urlsafe(24)
    link = ListeningLink.objects.create(
        request=made,
        recording=recording,
        token_hash=requests.token_hash(token),
        expires_at=timezone.now() + timedelta(hours=48),
        max_plays=3,
    )
    return link, token


def phone_play_path(client, twilio, token):
    """Ask for the call that plays the recording; return the audio path its TwiML plays."""
    assert client.post(reverse("portal:listen-by-phone", args=[token])).status_code == 200
    [call] = twilio.state.outbound_calls
    url = re.search(r"<Play>([^<]+)</Play>", call["twiml"]).group(1)
    assert url.startswith(settings.PUBLIC_BASE_URL)
    return url[len(settings.PUBLIC_BASE_URL) :]


def body(response):
    return b"".join(response.streaming_content) if response.streaming else response.content


def test_the_phone_play_url_serves_one_playback_and_audits_every_later_fetch(
    client, twilio, recording
):
    link, token = granted_link(recording)
    path = phone_play_path(client, twilio, token)

    fetches = [client.get(path) for _ in range(REPLAYS)]

    assert [response.status_code for response in fetches] == [200] + [410] * (REPLAYS - 1)
    assert body(fetches[0]) == AUDIO
    assert all(body(response) != AUDIO for response in fetches[1:])
    link.refresh_from_db()
    assert link.plays == 1
    playbacks = AccessEvent.objects.filter(action=Action.PLAYBACK)
    assert [(event.purpose, event.detail["by_phone"]) for event in playbacks] == [
        (access.DISCLOSURE, True)
    ]
    refusals = AccessEvent.objects.filter(action=Action.REFUSED)
    assert refusals.count() == REPLAYS - 1
    assert {event.detail["reason"] for event in refusals} == {"already_played"}
    assert {event.actor_label for event in refusals} == {f"customer {NUMBER}"}


def test_twilios_head_and_range_requests_are_part_of_the_one_playback(client, twilio, recording):
    link, token = granted_link(recording)
    path = phone_play_path(client, twilio, token)

    head = client.head(path)
    whole = client.get(path)
    tail = client.get(path, HTTP_RANGE="bytes=100-")
    elsewhere = client.get(path, HTTP_RANGE="bytes=100-", REMOTE_ADDR="198.51.100.7")

    assert (head.status_code, whole.status_code, tail.status_code) == (200, 200, 206)
    assert body(whole) == AUDIO
    assert body(tail) == AUDIO[100:]
    assert elsewhere.status_code == 410
    assert AccessEvent.objects.filter(action=Action.REFUSED).count() == 1
    assert link.phone_plays.count() == 1


def test_the_phone_play_url_is_refused_once_its_playback_window_has_passed(
    client, twilio, recording
):
    _, token = granted_link(recording)
    path = phone_play_path(client, twilio, token)
    assert client.get(path, HTTP_RANGE="bytes=0-99").status_code == 206
    PhonePlay.objects.update(
        first_fetch_at=timezone.now() - requests.PHONE_PLAY_WINDOW - timedelta(seconds=1)
    )

    late = client.get(path, HTTP_RANGE="bytes=100-")

    assert late.status_code == 410
    assert AccessEvent.objects.get(action=Action.REFUSED).detail["reason"] == "already_played"


def test_after_finish_the_listening_pages_audio_is_refused_in_the_same_browser(client, recording):
    _, token = granted_link(recording)
    audio = reverse("portal:listen-audio", args=[token])
    assert client.get(reverse("portal:listen", args=[token])).status_code == 200
    assert client.get(audio, HTTP_RANGE="bytes=0-99").status_code == 206

    assert client.post(reverse("portal:leave")).status_code == 302
    after = client.get(audio, HTTP_RANGE="bytes=100-199")

    assert after.status_code == 403
    assert body(after) != AUDIO[100:200]
