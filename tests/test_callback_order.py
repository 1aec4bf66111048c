"""Status and recording callbacks in any order, some of them twice: the calls end up the same.

Twilio sends each callback as a request of its own, and retries some; they arrive late,
twice or out of order. 300 calls get their callbacks shuffled (a fixed seed, every order of
a call's callbacks equally likely) and partly duplicated, then sent as signed webhooks; every
call must end with what its callbacks said, whichever arrived first.
"""

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from django.conf import settings

from contactcenter.models import Call
from recordings.models import Recording

from .factories import CallFactory
from .helpers.webhooks import twilio_post

pytestmark = pytest.mark.django_db

STATUS = "/twilio/voice/status"
RECORDINGS = "/twilio/recordings/status"
SEED = 13
CALLS = 300
START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)

ANSWERED_RECORDED = "answered, recorded"
ANSWERED_ABSENT = "answered, recording absent"
UNANSWERED = "not answered"


@dataclass
class Scenario:
    """One call: what Twilio reports of it, and what the call must end as."""

    kind: str
    sid: str
    callbacks: list = field(default_factory=list)
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    duration: int | None = None
    status: str = ""
    recording_state: str = ""
    recording_status: str | None = None


def status_callback(sid, status, sequence, at, **extra):
    params = {
        "CallSid": sid,
        "AccountSid": settings.TWILIO_ACCOUNT_SID,
        "CallStatus": status,
        "Direction": "inbound",
        "SequenceNumber": str(sequence),
        "Timestamp": format_datetime(at, usegmt=True),
        "CallbackSource": "call-progress-events",
        **extra,
    }
    return (STATUS, params)


def recording_callback(sid, recording_sid, status, started):
    params = {
        "CallSid": sid,
        "AccountSid": settings.TWILIO_ACCOUNT_SID,
        "RecordingSid": recording_sid,
        "RecordingStatus": status,
        "RecordingUrl": f"https://api.twilio.com/2010-04-01/Recordings/{recording_sid}",
        "RecordingChannels": "2",
        "RecordingSource": "DialVerb",
        "RecordingStartTime": format_datetime(started, usegmt=True),
    }
    if status == "completed":
        params["RecordingDuration"] = "30"
    return (RECORDINGS, params)


def scenario(number):
    """Call ``number``: answered and recorded, answered without audio, or not answered."""
    sid = f"CA{number:032x}"
    rung = START + timedelta(minutes=number)
    kind = (ANSWERED_RECORDED, ANSWERED_ABSENT, UNANSWERED)[number % 3]
    if kind == UNANSWERED:
        ended = rung + timedelta(seconds=25)
        return Scenario(
            kind,
            sid,
            callbacks=[
                status_callback(sid, "ringing", 0, rung),
                status_callback(sid, "no-answer", 1, ended),
            ],
            ended_at=ended,
            status=Call.Status.NO_ANSWER,
            recording_state=Call.RecordingState.REQUESTED,
        )
    answered = rung + timedelta(seconds=5 + number % 7)
    duration = 40 + number % 50
    ended = answered + timedelta(seconds=duration)
    recording_sid = f"RE{number:032x}"
    recording = "completed" if kind == ANSWERED_RECORDED else "absent"
    return Scenario(
        kind,
        sid,
        callbacks=[
            status_callback(sid, "ringing", 0, rung),
            status_callback(sid, "in-progress", 1, answered),
            status_callback(sid, "completed", 2, ended, CallDuration=str(duration)),
            recording_callback(sid, recording_sid, "in-progress", answered),
            recording_callback(sid, recording_sid, recording, answered),
        ],
        answered_at=answered,
        ended_at=ended,
        duration=duration,
        status=Call.Status.COMPLETED,
        recording_state=(
            Call.RecordingState.RECORDING
            if kind == ANSWERED_RECORDED
            else Call.RecordingState.NOT_RECORDED
        ),
        recording_status=(
            Recording.Status.COMPLETED if kind == ANSWERED_RECORDED else Recording.Status.ABSENT
        ),
    )


def shuffled_and_duplicated(scenarios, rng):
    """Every call's callbacks in a random order with one or two of them repeated later, and
    the calls interleaved with one another."""
    streams = []
    for each in scenarios:
        stream = list(each.callbacks)
        rng.shuffle(stream)
        for _ in range(rng.randint(1, 2)):
            repeated = rng.randrange(len(stream))
            stream.insert(rng.randint(repeated + 1, len(stream)), stream[repeated])
        streams.append(stream)
    sent = []
    while streams:
        stream = rng.choice(streams)
        sent.append(stream.pop(0))
        if not stream:
            streams.remove(stream)
    return sent


def arrivals(sent, callback):
    """The positions at which ``callback`` (or a copy of it) was sent."""
    return [index for index, each in enumerate(sent) if each is callback]


def mismatches(scenarios):
    """For each call whose stored state differs from what its callbacks said, what differs."""
    calls = Call.objects.in_bulk([each.sid for each in scenarios], field_name="sid")
    recordings = {
        recording.call.sid: recording.status
        for recording in Recording.objects.select_related("call")
    }
    found = {}
    for each in scenarios:
        call = calls[each.sid]
        stored = {
            "status": call.status,
            "answered_at": call.answered_at,
            "ended_at": call.ended_at,
            "duration": call.duration,
            "recording_state": call.recording_state,
            "recording": recordings.get(each.sid),
        }
        expected = {
            "status": each.status,
            "answered_at": each.answered_at,
            "ended_at": each.ended_at,
            "duration": each.duration,
            "recording_state": each.recording_state,
            "recording": each.recording_status,
        }
        wrong = sorted(name for name in stored if stored[name] != expected[name])
        if wrong:
            found[each.sid] = (each.kind, wrong)
    return found


def test_shuffled_and_repeated_callbacks_leave_every_call_as_twilio_reported_it(client):
    """GIVEN 300 calls (answered and recorded, answered without audio, not answered) whose
    Twilio callbacks arrive shuffled, interleaved and partly twice WHEN each is sent as a
    signed webhook THEN every call has its status, answer time, end time, duration and
    recording state, and every recording its status, as if they had arrived in order:
    0 mismatches."""
    rng = random.Random(SEED)
    scenarios = [scenario(number) for number in range(CALLS)]
    for each in scenarios:
        # Each call asked Twilio to record in its <Dial>.
        CallFactory(
            sid=each.sid,
            status=Call.Status.RINGING,
            duration=None,
            recording_state=Call.RecordingState.REQUESTED,
        )
    sent = shuffled_and_duplicated(scenarios, rng)
    late_answers = sum(
        1
        for each in scenarios
        if each.answered_at
        and arrivals(sent, each.callbacks[1])[0] > arrivals(sent, each.callbacks[2])[0]
    )

    statuses = [twilio_post(client, path, params).status_code for path, params in sent]

    assert set(statuses) == {200}
    assert len(sent) > CALLS * 4
    # The order that used to lose the answer time (in-progress after completed) is covered.
    assert late_answers > 50
    found = mismatches(scenarios)
    by_field = Counter(name for _kind, wrong in found.values() for name in wrong)
    assert found == {}, f"{len(found)} of {CALLS} calls differ: {dict(by_field)}"
