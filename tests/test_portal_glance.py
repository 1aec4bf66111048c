"""Issue 15 item 7: the listening page counts plays when the audio starts, not when it loads;
only recorded calls can be heard or copied; a code typed in full-width digits is the code;
portal controls are big enough for a thumb on a phone."""

import re
import secrets
from datetime import timedelta
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import AccessEvent
from portal import requests
from portal.models import CustomerRequest, ListeningLink, PhoneVerification

from .factories import CallFactory
from .helpers.portal import find_call
from .test_playback import stored_recording

pytestmark = pytest.mark.django_db

NUMBER = "+819011112222"
MINE = reverse("portal:mine")


@pytest.fixture(autouse=True)
def _fresh_limits(portal_codes):
    """Codes through the Twilio emulator, and the portal's limits fresh (conftest)."""


@pytest.fixture
def link(notice, operator):
    recording = stored_recording(operator)
    made = CustomerRequest.objects.create(
        phone_number=recording.call.customer.phone_number,
        kind=CustomerRequest.Kind.HEAR,
        due_at=timezone.now() + timedelta(days=7),
        status=CustomerRequest.Status.DONE,
    )
    token = secrets.token_urlsafe(24)
    created = ListeningLink.objects.create(
        request=made,
        recording=recording,
        token_hash=requests.token_hash(token),
        expires_at=timezone.now() + timedelta(hours=48),
        max_plays=3,
    )
    return created, token


def test_loading_and_reloading_the_listening_page_uses_no_play(client, link):
    listening, token = link

    pages = [client.get(reverse("portal:listen", args=[token])) for _ in range(5)]

    assert [page.status_code for page in pages] == [200] * 5
    listening.refresh_from_db()
    assert listening.plays == 0
    assert 'preload="none"' in pages[-1].content.decode()  # no fetch before "play"


def test_a_play_counts_once_when_its_audio_starts(client, link):
    listening, token = link
    client.get(reverse("portal:listen", args=[token]))
    audio = reverse("portal:listen-audio", args=[token])

    answers = [
        client.get(audio, HTTP_RANGE="bytes=0-99").status_code,
        client.get(audio, HTTP_RANGE="bytes=100-").status_code,  # a seek: the same play
        client.get(audio, HTTP_RANGE="bytes=50-60").status_code,
    ]

    assert answers == [206, 206, 206]
    listening.refresh_from_db()
    assert listening.plays == 1
    assert AccessEvent.objects.filter(action=AccessEvent.Action.PLAYBACK).count() == 1


def prove(client, twilio, code_of=lambda code: code):
    client.post(reverse("portal:start"), {"phone_number": NUMBER, "channel": "sms"})
    code = re.search(r"\b(\d{6})\b", twilio.state.messages[-1]["body"]).group(1)
    return client.post(reverse("portal:verify"), {"code": code_of(code)})


def test_the_code_in_full_width_digits_is_accepted_and_not_counted_wrong(client, twilio):
    full_width = str.maketrans("0123456789", "０１２３４５６７８９")

    answer = prove(client, twilio, lambda code: code.translate(full_width))

    assert answer.status_code == 302 and answer["Location"] == MINE
    verification = PhoneVerification.objects.get()
    assert verification.verified_at is not None
    assert verification.attempts == 1


def test_an_unrecorded_call_cannot_be_heard_or_copied(client, twilio, notice, operator):
    recorded = stored_recording(operator)
    customer = recorded.call.customer
    customer.phone_number = NUMBER
    customer.save()
    unrecorded = CallFactory(customer=customer)
    assert prove(client, twilio)["Location"] == MINE
    find_call(client, recorded.call)
    find_call(client, unrecorded)

    page = client.get(MINE).content.decode()
    for kind, extra in [("hear", {}), ("copy", {"copy_format": "link"})]:
        answer = client.post(MINE, {"kind": kind, "calls": [str(unrecorded.pk)], **extra})
        assert answer.status_code == 400
    with pytest.raises(requests.RequestError):
        requests.submit(phone_number=NUMBER, kind="hear", call_ids=[unrecorded.pk])

    assert f'name="calls" value="{unrecorded.pk}"' not in page  # not offered
    assert f'name="calls" value="{recorded.call.pk}"' in page
    assert not CustomerRequest.objects.exists()


def test_portal_controls_are_sized_for_a_phone():
    css = (
        Path(__file__).resolve().parents[1] / "contactcenter/static/contactcenter/public.css"
    ).read_text()

    inputs = re.search(r'input\[type="text"\][^{]*\{([^}]*)\}', css).group(1)
    radios = re.search(r'input\[type="radio"\][^{]*\{([^}]*)\}', css).group(1)
    assert "font-size: 16px" in inputs and "min-height: 44px" in inputs
    assert int(re.search(r"width: (\d+)px", radios).group(1)) >= 24
    assert re.search(r"label[^{]*\{[^}]*min-height: 44px", css)
