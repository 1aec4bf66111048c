"""A Celery worker SIGKILLed in the middle of a download: its heartbeats kept the lease alive
while it lived, so nobody took over; once they stop, another worker takes over within the
lease and stores exactly one copy."""

import time
from pathlib import Path

import pytest

from recordings import crypto
from recordings.models import Recording
from recordings.tasks import fetch_recording, requeue_stalled_fetches

from ..factories import consented_call, recording_notice
from ..helpers.recordings import at_twilio, decrypted, media_requests, stored_files, twilio_copy
from ..helpers.services import (
    Worker,
    wait_for,
    wait_for_worker_sessions_to_end,
)
from ..helpers.staff import acknowledged_operator

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

Status = Recording.Status
# The workers' lease, short so that the test takes seconds (production: 120 s); they renew
# it every quarter of it, 1 s, while the audio streams.
LEASE_SECONDS = 4


@pytest.fixture
def workers(broker, twilio, tmp_path):
    started = []

    def start(name):
        worker = Worker(broker=broker, twilio=twilio, log_path=tmp_path / f"{name}.log")
        worker.variables["RECORDINGS_FETCH_LEASE_SECONDS"] = LEASE_SECONDS
        started.append(worker.start())
        return worker

    yield start
    for worker in started:
        worker.stop()
    wait_for_worker_sessions_to_end()


@pytest.fixture
def recording(live_db, twilio):
    """30 s of audio (960 kB) that Twilio serves over 12 s, waiting to be fetched."""
    recording_notice()
    call = consented_call(acknowledged_operator("op"))
    resource = at_twilio(twilio, call, seconds=30, trickle_seconds=12)
    return Recording.objects.create(
        sid=resource["sid"], call=call, status=Status.COMPLETED, channels=2
    )


def fetched(recording):
    return Recording.objects.filter(
        pk=recording.pk, status=Status.STORED, twilio_deleted_at__isnull=False
    ).exists()


def test_a_killed_fetch_is_taken_over_within_the_lease_and_stored_once(recording, workers, twilio):
    first, second = workers("first"), workers("second")
    fetch_recording.delay(recording.pk)
    wait_for(
        lambda: (
            media_requests(twilio, recording) >= 1
            and any(p.stat().st_size > crypto.HEADER_SIZE for p in stored_files())
        ),
        what="the download to start writing",
        worker=first,
    )
    downloading = first if "fetch_recording[" in first.log() else second
    survivor = second if downloading is first else first

    # Past its first lease, the download is still live: its heartbeats renewed the lease,
    # so neither beat's sweep nor a duplicate task hands it to the second worker.
    time.sleep(LEASE_SECONDS + 1.5)
    requeue_stalled_fetches.delay()
    fetch_recording.delay(recording.pk)
    time.sleep(1.5)
    assert media_requests(twilio, recording) == 1
    assert Recording.objects.get(pk=recording.pk).fetch_attempts == 1

    # Whichever worker was downloading dies; Twilio serves at full speed from now on.
    downloading.kill()
    killed_at = time.monotonic()
    twilio_copy(twilio, recording)["faults"] = {}

    # Beat's sweep, every half second here (every minute in production).
    deadline = killed_at + 30
    while not fetched(recording):
        assert time.monotonic() < deadline, survivor.log()
        requeue_stalled_fetches.delay()
        time.sleep(0.5)
    recovered_after = time.monotonic() - killed_at

    print(f"recovered {recovered_after:.1f} s after the kill (lease {LEASE_SECONDS} s)")
    assert recovered_after < LEASE_SECONDS + 3
    recording.refresh_from_db()
    assert recording.fetch_attempts == 2
    assert media_requests(twilio, recording) == 2
    assert [p.name for p in stored_files()] == [Path(recording.blob_name).name]
    assert decrypted(recording) == twilio_copy(twilio, recording)["media"]
    assert twilio_copy(twilio, recording)["deleted"] is True
