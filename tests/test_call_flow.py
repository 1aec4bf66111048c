"""Whole calls driven by the local Twilio emulator over HTTP against the running app."""

import io
import xml.etree.ElementTree as ET

import pytest
from django.core.management import call_command

from consent.models import ConsentRecord
from contactcenter.models import Call, CallEvent

from .factories import PurposeFactory, published_notice
from .helpers.staff import acknowledged_operator

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def center(live_db):
    published_notice(
        purposes=[PurposeFactory(code="quality", name_ja="品質向上", name_en="service quality")]
    )
    return acknowledged_operator("op")


def has_record_attribute(result):
    return any(
        "record" in element.attrib
        for document in result.documents
        for element in ET.fromstring(document).iter()
    )


def test_digits_1_gives_a_granted_consent_and_a_recording_at_twilio(driver, center, twilio):
    result = driver.run(digits="1")
    assert all(status == 200 for _url, status in result.exchanges)
    call = Call.objects.get(sid=result.call_sid)
    assert call.status == Call.Status.COMPLETED
    assert call.operator == center
    assert call.duration == 23
    record = ConsentRecord.objects.get(call=call)
    assert record.decision == ConsentRecord.Decision.GRANTED
    assert result.record_requested and has_record_attribute(result)
    recording = twilio.state.recordings[result.recording_sid]
    assert recording["call_sid"] == call.sid
    assert recording["status"] == "completed"
    assert recording["media"][:4] == b"RIFF"
    assert call.recording_state == Call.RecordingState.RECORDING
    assert call.events.filter(kind=CallEvent.Kind.OPERATOR_ANSWERED).exists()


def test_digits_2_gives_a_refused_consent_and_no_recording_anywhere(driver, center, twilio):
    result = driver.run(digits="2")
    call = Call.objects.get(sid=result.call_sid)
    assert ConsentRecord.objects.get(call=call).decision == ConsentRecord.Decision.REFUSED
    assert not has_record_attribute(result)
    assert result.recording_sid is None
    assert twilio.state.recordings == {}
    assert call.recording_state == Call.RecordingState.NOT_RECORDED
    assert call.status == Call.Status.COMPLETED
    assert ("ja-JP", "このお電話は録音いたしません。担当者におつなぎします。") in result.transcript


def test_no_answer_twice_connects_without_recording(driver, center, twilio):
    result = driver.run(digits="")
    call = Call.objects.get(sid=result.call_sid)
    record = ConsentRecord.objects.get(call=call)
    assert record.decision == ConsentRecord.Decision.REFUSED
    assert not has_record_attribute(result)
    assert sum("もう一度" in text for _lang, text in result.transcript) == 1


def test_an_english_speaker_presses_9_then_1(driver, center):
    result = driver.run(digits="91")
    call = Call.objects.get(sid=result.call_sid)
    assert call.language == "en"
    assert result.record_requested
    assert any(lang == "en-US" and "recorded" in text for lang, text in result.transcript)


def test_simulate_call_runs_a_whole_call_against_the_app(live_server, center):
    out = io.StringIO()
    call_command("simulate_call", digits="1", app_url=live_server.url, stdout=out)
    text = out.getvalue()
    assert "recording requested" in text
    assert "/twilio/voice/consent" in text
    assert "→ 200" in text
    assert Call.objects.filter(consent_records__decision="granted").count() == 1
