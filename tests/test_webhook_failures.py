"""When a webhook fails: Twilio is asked to retry callbacks, a callback that could not be stored
is answered 5xx, and the fallback (also Twilio's fallback URL) connects without recording."""

import xml.etree.ElementTree as ET
from contextlib import contextmanager
from urllib.parse import parse_qs, urldefrag, urlsplit

import pytest
from django.conf import settings
from django.db import connection

from .factories import PurposeFactory, published_notice
from .helpers.staff import acknowledged_operator
from .helpers.webhooks import twilio_post

pytestmark = pytest.mark.django_db

CALL_SID = "CA" + "2" * 32
RETRY_ON_5XX = {"rc", "rp"}


@pytest.fixture
def operators():
    return [acknowledged_operator("op-a"), acknowledged_operator("op-b")]


@pytest.fixture
def notice():
    return published_notice(purposes=[PurposeFactory(code="quality")])


def call_params(**extra):
    return {
        "CallSid": CALL_SID,
        "AccountSid": settings.TWILIO_ACCOUNT_SID,
        "From": "+81312345678",
        "To": "+815012345678",
        "CallStatus": "ringing",
        "Direction": "inbound",
        **extra,
    }


def parse(response):
    assert response.status_code == 200, response.content
    return ET.fromstring(response.content)


def overrides(url):
    """Twilio's connection overrides in ``url``'s fragment, as a dict."""
    return {key: value[0] for key, value in parse_qs(urlsplit(url).fragment).items()}


@contextmanager
def missing_table(name):
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {name} RENAME TO {name}_unavailable")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {name}_unavailable RENAME TO {name}")


class TestCallbackUrlsAskTwilioToRetry:
    def test_every_callback_url_in_the_twiml_carries_connection_overrides(
        self, client, notice, operators
    ):
        gather_doc = parse(twilio_post(client, "/twilio/voice/incoming", call_params()))
        action = gather_doc.find("Gather").get("action")
        assert {"rc", "rp"} <= overrides(action).keys()
        assert "ct" in overrides(gather_doc.find("Redirect").text)

        query = urlsplit(urldefrag(action).url).query
        dial_doc = parse(
            twilio_post(client, "/twilio/voice/consent", call_params(Digits="1"), query=query)
        )
        dial = dial_doc.find("Dial")
        urls = [dial.get("recordingStatusCallback")] + [leg.get("statusCallback") for leg in dial]
        assert len(urls) == 3
        for url in urls:
            fragment = overrides(url)
            assert int(fragment["rc"]) >= 1
            assert "5xx" in fragment["rp"].split(",")

    def test_a_url_that_had_a_fragment_is_signed_without_it_as_twilio_does(
        self, client, notice, operators
    ):
        action = (
            parse(twilio_post(client, "/twilio/voice/incoming", call_params()))
            .find("Gather")
            .get("action")
        )
        # Twilio strips the fragment, then signs and requests what is left.
        query = urlsplit(urldefrag(action).url).query
        answered = twilio_post(
            client, "/twilio/voice/consent", call_params(Digits="2"), query=query
        )
        assert answered.status_code == 200


class TestCallbacksThatCannotBeStored:
    def test_a_call_status_callback_that_fails_answers_503(self, client, notice):
        twilio_post(client, "/twilio/voice/incoming", call_params())
        with missing_table("contactcenter_call"):
            answered = twilio_post(
                client,
                "/twilio/voice/status",
                call_params(CallStatus="completed", SequenceNumber="3"),
            )
        assert answered.status_code == 503

    def test_a_recording_callback_that_fails_answers_503(self, client, notice):
        twilio_post(client, "/twilio/voice/incoming", call_params())
        params = call_params(
            RecordingSid="RE" + "3" * 32,
            RecordingStatus="completed",
            RecordingUrl="https://api.twilio.com/2010-04-01/Accounts/AC/Recordings/RE3",
            RecordingDuration="12",
        )
        with missing_table("recordings_recording"):
            answered = twilio_post(client, "/twilio/recordings/status", params)
        assert answered.status_code == 503


class TestFallback:
    def test_the_fallback_url_is_signature_checked(self, client, operators):
        params = call_params(ErrorCode="11200", ErrorUrl="https://example.jp/twilio/voice/incoming")
        assert client.post("/twilio/voice/fallback", params).status_code == 403
        assert (
            twilio_post(client, "/twilio/voice/fallback", params, signature="x").status_code == 403
        )

    def test_the_fallback_url_answers_as_a_failing_webhook_does(self, client, operators):
        params = call_params(ErrorCode="11200", ErrorUrl="https://example.jp/twilio/voice/incoming")
        fallback = parse(twilio_post(client, "/twilio/voice/fallback", params))
        with missing_table("privacy_notice"):
            failing = parse(twilio_post(client, "/twilio/voice/incoming", call_params()))
        assert ET.tostring(fallback) == ET.tostring(failing)
        numbers = [leg.text for leg in fallback.find("Dial")]
        assert numbers == [operator.routing_address for operator in operators]
        assert "record" not in fallback.find("Dial").attrib

    def test_without_the_operators_table_the_last_read_operators_are_rung(
        self, client, notice, operators
    ):
        parse(twilio_post(client, "/twilio/voice/fallback", call_params()))  # read, remembered
        with missing_table("contactcenter_operator"):
            root = parse(twilio_post(client, "/twilio/voice/fallback", call_params()))
        assert [leg.text for leg in root.find("Dial")] == [op.routing_address for op in operators]

    def test_without_operators_or_a_recent_list_the_fallback_target_is_rung(
        self, client, notice, operators, settings
    ):
        settings.FALLBACK_OPERATORS_MAX_AGE = 0
        settings.FALLBACK_DIAL_TARGET = "sip:desk@pbx.example.jp"
        with missing_table("contactcenter_operator"):
            root = parse(twilio_post(client, "/twilio/voice/fallback", call_params()))
        assert [leg.tag for leg in root.find("Dial")] == ["Sip"]
        assert root.find("Dial/Sip").text == "sip:desk@pbx.example.jp"

    def test_with_nothing_to_ring_the_caller_hears_the_apology(
        self, client, operators, settings, caplog
    ):
        settings.FALLBACK_OPERATORS_MAX_AGE = 0
        settings.FALLBACK_DIAL_TARGET = ""
        with missing_table("contactcenter_operator"):
            root = parse(twilio_post(client, "/twilio/voice/fallback", call_params()))
        assert root.find("Hangup") is not None
        assert "Set FALLBACK_DIAL_TARGET" in caplog.text
