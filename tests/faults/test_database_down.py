"""With PostgreSQL down, callers are still connected (not recorded) and callbacks are not lost.

A gunicorn of the app with production settings runs against a PostgreSQL cluster of the
test's own, which the test stops and starts again."""

import secrets
import time
import xml.etree.ElementTree as ET

import pytest

from tests.helpers.appserver import AppServer, migrate
from tests.helpers.postgres import PrivatePostgres

pytestmark = pytest.mark.faults

CALLS = 30
RING_GROUP = "+81351234567"
RECORDING_ATTRIBUTES = {"record", "recordingStatusCallback", "recordingStatusCallbackEvent"}


@pytest.fixture(scope="module")
def cluster():
    with PrivatePostgres() as cluster:
        migrate(cluster.url)
        yield cluster


@pytest.fixture
def app(cluster, tmp_path):
    with AppServer(
        database_url=cluster.url, log_path=tmp_path / "app.log", FALLBACK_DIAL_TARGET=RING_GROUP
    ) as app:
        yield app
    if not cluster.running:
        cluster.start()


def call_params(**extra):
    return {
        "AccountSid": "AC" + "a" * 32,
        "CallSid": "CA" + secrets.token_hex(16),
        "From": "+81312345678",
        "To": "+815012345678",
        "CallStatus": "ringing",
        "Direction": "inbound",
        **extra,
    }


def stored_call(cluster, column, sid):
    # The CallSid is "CA" + hex made by this test, never outside input.
    return cluster.psql(f"SELECT {column} FROM contactcenter_call WHERE sid = '{sid}'")  # noqa: S608


def dialled(response):
    """The addresses the TwiML dials, and whether anything in it asks for a recording."""
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/xml")
    root = ET.fromstring(response.text)
    attributes = {name for element in root.iter() for name in element.attrib}
    dial = root.find("Dial")
    numbers = [leg.text for leg in dial] if dial is not None else []
    return numbers, bool(attributes & RECORDING_ATTRIBUTES)


def test_with_the_database_stopped_every_caller_is_connected_without_recording(cluster, app):
    """GIVEN PostgreSQL stopped WHEN 30 calls come in (and answer the consent question)
    THEN every one is put through to FALLBACK_DIAL_TARGET, none recorded; and once the
    database is back, calls are stored again."""
    cluster.stop()
    connected, slowest = 0, 0.0
    for _ in range(CALLS):
        params = call_params()
        started = time.monotonic()
        numbers, recorded = dialled(app.twilio_post("/twilio/voice/incoming", params))
        slowest = max(slowest, time.monotonic() - started)
        assert not recorded
        connected += numbers == [RING_GROUP]
    consent = call_params(Digits="1", CallStatus="in-progress")
    numbers, recorded = dialled(
        app.twilio_post("/twilio/voice/consent?notice=1&lang=ja&attempt=1", consent)
    )
    assert numbers == [RING_GROUP] and not recorded
    fallback = call_params(ErrorCode="11200", ErrorUrl="https://callcenter.example.jp/x")
    numbers, recorded = dialled(app.twilio_post("/twilio/voice/fallback", fallback))
    assert numbers == [RING_GROUP] and not recorded
    print(f"callers connected: {connected} of {CALLS}; slowest answer {slowest:.3f} s")
    assert connected == CALLS, app.log()
    assert slowest < 2

    cluster.start()
    params = call_params()
    assert app.twilio_post("/twilio/voice/incoming", params).status_code == 200
    assert stored_call(cluster, "count(*)", params["CallSid"]) == "1"
    assert app.http.get(app.url + "/healthz", headers=app.headers(), timeout=5).status_code == 200


def test_a_callback_that_cannot_be_stored_answers_5xx(cluster, app):
    """GIVEN PostgreSQL stopped WHEN Twilio posts a call or recording status callback THEN
    it is answered 5xx (so that Twilio retries), never 200."""
    cluster.stop()
    status = call_params(CallStatus="completed", SequenceNumber="3", CallDuration="42")
    answered = app.twilio_post("/twilio/voice/status", status)
    assert answered.status_code == 503, answered.text
    recording = call_params(
        RecordingSid="RE" + secrets.token_hex(16),
        RecordingStatus="completed",
        RecordingUrl="https://api.twilio.com/2010-04-01/Accounts/AC/Recordings/RE1",
        RecordingDuration="42",
        RecordingChannels="2",
        RecordingSource="DialVerb",
    )
    answered = app.twilio_post("/twilio/recordings/status", recording)
    assert answered.status_code == 503, answered.text

    cluster.start()
    assert app.twilio_post("/twilio/voice/status", status).status_code == 200
    assert stored_call(cluster, "status", status["CallSid"]) == "completed"
