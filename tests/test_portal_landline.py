"""Issue 15 (deliver 6, item 2): a caller who proved a landline by a voice call is answered by
a voice call in Japanese (the decision, and for a hearing the recording itself), never by SMS
to a number that cannot take it; a mobile proven by SMS is still answered by SMS."""

import re
import xml.etree.ElementTree as ET

import pytest
from django.urls import reverse

from portal.models import CustomerRequest

from .helpers.portal import find_call
from .test_playback import stored_recording
from .test_portal_requests import decide

pytestmark = pytest.mark.django_db

LANDLINE = "+81312345678"  # 03-1234-5678, Tokyo
MOBILE = "+819011112222"
MINE = reverse("portal:mine")


@pytest.fixture(autouse=True)
def _fresh_limits(portal_codes):
    """Codes through the Twilio emulator, and the portal's limits fresh (conftest)."""


def recording_of(number, operator):
    recording = stored_recording(operator)
    customer = recording.call.customer
    customer.phone_number = number
    customer.save()
    return recording


def prove_and_ask(client, twilio, number, channel, recording, kind="hear"):
    client.post(reverse("portal:start"), {"phone_number": number, "channel": channel})
    if channel == "call":
        said = twilio.state.outbound_calls[-1]["twiml"]
        code = "".join(re.search(r"((?:\d、){5}\d)", said).group(1).split("、"))
    else:
        code = re.search(r"\b(\d{6})\b", twilio.state.messages[-1]["body"]).group(1)
    assert client.post(reverse("portal:verify"), {"code": code})["Location"] == MINE
    find_call(client, recording.call)
    answer = client.post(MINE, {"kind": kind, "calls": [str(recording.call.pk)]})
    assert answer["Location"] == reverse("portal:sent")
    return CustomerRequest.objects.get()


def spoken(twiml):
    root = ET.fromstring(twiml)
    says = root.findall("Say")
    assert says and all(say.get("language") == "ja-JP" for say in says)
    return "".join(say.text for say in says), [play.text for play in root.findall("Play")]


def test_a_landline_proven_by_voice_is_answered_by_a_call_that_plays_the_recording(
    client, twilio, notice, operator, supervisor, settings
):
    recording = recording_of(LANDLINE, operator)
    made = prove_and_ask(client, twilio, LANDLINE, "call", recording)
    assert made.answer_by == "call"
    receipt = client.get(reverse("portal:sent")).content.decode()
    assert "text message" not in receipt and "SMS" not in receipt
    calls_before = len(twilio.state.outbound_calls)

    decide(client, supervisor, made, "approve")

    assert twilio.state.messages == []  # no SMS at any point: not the code, not the answer
    [answer] = twilio.state.outbound_calls[calls_before:]
    assert answer["to"] == LANDLINE
    text, plays = spoken(answer["twiml"])
    assert "承認しました" in text
    assert len(plays) == 1 and plays[0].startswith(settings.PUBLIC_BASE_URL + "/requests/")
    client.logout()
    audio = client.get(plays[0][len(settings.PUBLIC_BASE_URL) :])  # as Twilio fetches it
    assert audio.status_code == 200
    assert made.links.get().plays == 1


def test_a_refusal_to_a_landline_is_said_in_a_call(client, twilio, notice, operator, supervisor):
    recording = recording_of(LANDLINE, operator)
    made = prove_and_ask(client, twilio, LANDLINE, "call", recording)
    calls_before = len(twilio.state.outbound_calls)

    decide(client, supervisor, made, "refuse", ground="identity", reason="本人確認できず")

    assert twilio.state.messages == []
    [answer] = twilio.state.outbound_calls[calls_before:]
    text, plays = spoken(answer["twiml"])
    assert "お応えできませんでした" in text and plays == []


def test_a_deletion_for_a_landline_is_closed_by_a_call(
    client, twilio, notice, operator, supervisor
):
    recording = recording_of(LANDLINE, operator)
    made = prove_and_ask(client, twilio, LANDLINE, "call", recording, kind="delete")
    calls_before = len(twilio.state.outbound_calls)

    decide(client, supervisor, made, "approve")

    made.refresh_from_db()
    assert made.status == "done"
    assert twilio.state.messages == []
    [answer] = twilio.state.outbound_calls[calls_before:]
    assert "削除しました" in spoken(answer["twiml"])[0]


def test_a_mobile_proven_by_sms_is_answered_by_sms(client, twilio, notice, operator, supervisor):
    recording = recording_of(MOBILE, operator)
    made = prove_and_ask(client, twilio, MOBILE, "sms", recording)
    assert made.answer_by == "sms"
    receipt = client.get(reverse("portal:sent")).content.decode()
    assert "phone call" not in receipt

    decide(client, supervisor, made, "approve")

    assert twilio.state.outbound_calls == []
    assert twilio.state.messages[-1]["to"] == MOBILE
    assert "/requests/listen/" in twilio.state.messages[-1]["body"]
