"""A caller's audio goes through ``recordings.access`` like every other audio: a listening link
(its page, its audio, its copy) and the call that plays it are checked there — only the
recording of a call from the number the request was made for, while the grant lasts — and
audited there: the opening as a PLAYBACK for the disclosure purpose, every refusal."""

import re
import secrets
from datetime import timedelta

import pytest
from django.core import signing
from django.urls import reverse
from django.utils import timezone

from audit.models import AccessEvent
from portal import requests
from portal.models import CustomerRequest, ListeningLink
from portal.views import PHONE_SALT
from recordings import access
from twilio_emulator.server import synthetic_wav

from . import factories

pytestmark = pytest.mark.django_db

Action = AccessEvent.Action
AUDIO = synthetic_wav(1)
NUMBER = "+819011112222"
SOMEONE_ELSE = "+819099998888"


@pytest.fixture
def recording(notice, operator):
    recording = factories.stored_recording(operator, audio=AUDIO)
    customer = recording.call.customer
    customer.phone_number = NUMBER
    customer.save()
    return recording


def link_to(recording, *, phone_number=NUMBER, kind="hear", **fields):
    """A granted request's listening link; returns ``(link, token)``."""
    made = CustomerRequest.objects.create(
        phone_number=phone_number,
        kind=kind,
        due_at=timezone.now() + timedelta(days=7),
        status=CustomerRequest.Status.DONE,
        **fields,
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


def test_opening_a_listening_page_is_a_disclosure_playback_in_the_trail(client, recording):
    link, token = link_to(recording)

    page = client.get(reverse("portal:listen", args=[token]))
    audio = client.get(reverse("portal:listen-audio", args=[token]), HTTP_RANGE="bytes=0-99")

    assert page.status_code == 200
    assert audio.status_code == 206
    assert b"".join(audio.streaming_content) == AUDIO[:100]
    [event] = AccessEvent.objects.filter(action__in=[Action.PLAYBACK, Action.REFUSED])
    assert event.action == Action.PLAYBACK
    assert event.purpose == access.DISCLOSURE
    assert event.actor_label == f"customer {NUMBER}"
    assert event.detail == {"request": link.request.reference, "link": link.pk, "by_phone": False}


def test_a_link_to_someone_elses_recording_is_refused_and_audited(client, recording):
    _, token = link_to(recording, phone_number=SOMEONE_ELSE)

    page = client.get(reverse("portal:listen", args=[token]))

    assert page.status_code == 403
    assert "src=" not in page.content.decode()
    event = AccessEvent.objects.get(action=Action.REFUSED)
    assert (event.recording_id, event.recording_sid) == (recording.pk, recording.sid)
    assert event.purpose == access.DISCLOSURE
    assert event.detail["reason"] == "not_theirs"
    assert event.actor_label == f"customer {SOMEONE_ELSE}"
    assert not AccessEvent.objects.filter(action=Action.PLAYBACK).exists()


def test_the_audio_of_an_opened_page_is_checked_again_on_every_request(client, recording):
    link, token = link_to(recording)
    assert client.get(reverse("portal:listen", args=[token])).status_code == 200
    CustomerRequest.objects.filter(pk=link.request.pk).update(phone_number=SOMEONE_ELSE)

    audio = client.get(reverse("portal:listen-audio", args=[token]))

    assert audio.status_code == 403
    refusal = AccessEvent.objects.get(action=Action.REFUSED)
    assert refusal.purpose == access.DISCLOSURE
    assert refusal.detail["reason"] == "not_theirs"


def test_a_copy_as_a_file_is_checked_too(client, recording):
    link, token = link_to(recording, kind="copy", copy_format="file")
    assert client.get(reverse("portal:listen", args=[token])).status_code == 200
    CustomerRequest.objects.filter(pk=link.request.pk).update(phone_number=SOMEONE_ELSE)

    download = client.get(reverse("portal:copy-download", args=[token]))

    assert download.status_code == 403
    assert AccessEvent.objects.get(action=Action.REFUSED).detail["reason"] == "not_theirs"


def test_the_audio_twilio_plays_in_the_call_is_checked_and_a_refusal_audited(client, recording):
    link, _ = link_to(recording, phone_number=SOMEONE_ELSE)
    signed = signing.dumps({"l": link.pk}, salt=PHONE_SALT)

    audio = client.get(reverse("portal:phone-audio", args=[signed]))

    assert audio.status_code == 403
    event = AccessEvent.objects.get(action=Action.REFUSED)
    assert event.purpose == access.DISCLOSURE
    assert event.detail == {
        "reason": "not_theirs",
        "request": link.request.reference,
        "link": link.pk,
        "by_phone": True,
    }


def test_a_call_to_play_someone_elses_recording_is_not_placed(client, twilio, recording):
    _, token = link_to(recording, phone_number=SOMEONE_ELSE)

    response = client.post(reverse("portal:listen-by-phone", args=[token]))

    assert response.status_code == 403
    assert twilio.state.outbound_calls == []
    assert AccessEvent.objects.get(action=Action.REFUSED).detail["by_phone"] is True


def test_the_phone_play_is_a_disclosure_playback(client, twilio, recording, settings):
    _, token = link_to(recording)

    response = client.post(reverse("portal:listen-by-phone", args=[token]))

    assert response.status_code == 200
    [call] = twilio.state.outbound_calls
    play = re.search(r"<Play>([^<]+)</Play>", call["twiml"]).group(1)
    audio = client.get(play[len(settings.PUBLIC_BASE_URL) :])
    assert b"".join(audio.streaming_content) == AUDIO
    [event] = AccessEvent.objects.filter(action__in=[Action.PLAYBACK, Action.REFUSED])
    assert event.action == Action.PLAYBACK
    assert event.purpose == access.DISCLOSURE
    assert event.detail["by_phone"] is True
