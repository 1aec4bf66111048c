"""The recording pipeline across processes: whole calls from the Twilio emulator, webhooks
served by the app, fetches run by a real Celery worker through Redis — with Redis down
while the webhook runs, and with the worker killed in the middle of a download."""

import hashlib
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone

from contactcenter.models import Call
from recordings import crypto, ingest
from recordings.models import OutboxMessage, Recording

from .factories import PurposeFactory, published_notice
from .helpers.recordings import decrypted, stored_files
from .helpers.services import (
    Worker,
    wait_for,
    wait_for_worker_sessions_to_end,
)
from .helpers.staff import acknowledged_operator

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

Status = Recording.Status


@pytest.fixture
def workers(broker, twilio, tmp_path):
    started = []

    def start():
        worker = Worker(broker=broker, twilio=twilio, log_path=tmp_path / "worker.log")
        started.append(worker.start())
        return worker

    yield start
    for worker in started:
        worker.stop()
    wait_for_worker_sessions_to_end()


@pytest.fixture
def center(live_db):
    published_notice(
        purposes=[
            PurposeFactory(code="quality", name_ja="品質向上", retention_days=30),
            PurposeFactory(
                code="training", name_ja="研修", retention_days=90, allows_training_review=True
            ),
        ]
    )
    return acknowledged_operator("op")


def recording_status(sid):
    return Recording.objects.filter(sid=sid).values_list("status", flat=True).first()


def fetched(sid):
    """Stored, and Twilio's copy deleted (the last step of a fetch)."""
    return Recording.objects.filter(
        sid=sid, status=Status.STORED, twilio_deleted_at__isnull=False
    ).exists()


def test_a_consenting_call_ends_with_an_encrypted_copy_and_none_at_twilio(
    center, broker, workers, driver, twilio
):
    worker = workers()

    result = driver.run(digits="1", talk_seconds=4)
    wait_for(
        lambda: fetched(result.recording_sid),
        what="the recording to be stored",
        worker=worker,
    )

    recording = Recording.objects.get(sid=result.recording_sid)
    at_twilio = twilio.state.recordings[result.recording_sid]
    assert recording.call == Call.objects.get(sid=result.call_sid)
    assert decrypted(recording) == at_twilio["media"]
    assert recording.plaintext_sha256 == hashlib.sha256(at_twilio["media"]).hexdigest()
    assert at_twilio["deleted"] is True
    assert recording.twilio_deleted_at is not None
    assert {p.purpose.code for p in recording.purposes.all()} == {"quality", "training"}
    [blob] = stored_files()
    assert blob.read_bytes()[:5] == b"CCREC"
    assert "recordings.tasks.fetch_recording[" in worker.log()
    assert OutboxMessage.objects.get().published_at is not None


def test_a_refusing_call_stores_nothing(center, broker, workers, driver, twilio):
    workers()

    result = driver.run(digits="2")

    assert result.recording_sid is None
    assert twilio.state.recordings == {}
    assert not Recording.objects.exists()
    assert not OutboxMessage.objects.exists()
    assert stored_files() == []


def test_with_redis_down_the_outbox_delivers_the_fetch_later(
    center, broker, workers, driver, twilio
):
    broker.stop()

    result = driver.run(digits="1")

    assert all(status == 200 for _url, status in result.exchanges)
    message = OutboxMessage.objects.get()
    assert message.published_at is None
    assert message.last_error
    assert recording_status(result.recording_sid) == Status.COMPLETED
    assert twilio.state.recordings[result.recording_sid]["deleted"] is False

    broker.start()
    worker = workers()
    call_command("relay_outbox")

    wait_for(
        lambda: fetched(result.recording_sid),
        what="the relayed fetch",
        worker=worker,
    )
    assert twilio.state.recordings[result.recording_sid]["deleted"] is True
    assert len(stored_files()) == 1


def test_a_worker_killed_mid_fetch_leaves_twilios_copy_and_the_next_one_finishes(
    center, broker, workers, driver, twilio
):
    worker = workers()

    # Twilio serves 30 s of audio (960 kB) slowly, so the download is surely in progress when
    # the kill comes: the worker reads 256 KiB at a time, and writes as it reads.
    result = driver.run(digits="1", talk_seconds=30, media_faults={"trickle_seconds": 8})
    sid = result.recording_sid
    wait_for(
        lambda: (
            twilio.state.recordings[sid].get("media_requests", 0) >= 1
            and any(p.stat().st_size > crypto.HEADER_SIZE for p in stored_files())
        ),
        what="the download to start writing",
        worker=worker,
    )
    worker.kill()

    recording = Recording.objects.get(sid=sid)
    assert recording.status == Status.COMPLETED
    assert recording.blob_name == ""
    assert recording.wrapped_key is None
    assert twilio.state.recordings[sid]["deleted"] is False
    [partial] = stored_files()
    assert recording.partial_blob_name.endswith(partial.name)
    assert partial.read_bytes()[:5] == b"CCREC"
    assert b"RIFF" not in partial.read_bytes()

    # Later: the lease has run out, Twilio serves at full speed, and the lost task is noticed.
    Recording.objects.filter(pk=recording.pk).update(
        fetch_started_at=timezone.now() - ingest.FETCH_LEASE - timedelta(minutes=1)
    )
    twilio.state.recordings[sid]["faults"] = {}
    worker = workers()
    later = timezone.now() + ingest.STALLED_AFTER + timedelta(minutes=1)
    assert ingest.requeue_stalled_fetches(now=later) == 1

    wait_for(
        lambda: fetched(sid),
        what="the next attempt to store the recording",
        worker=worker,
    )
    recording.refresh_from_db()
    assert recording.fetch_attempts == 2
    assert recording.partial_blob_name == ""
    assert [p.name for p in stored_files()] == [Path(recording.blob_name).name]
    assert decrypted(recording) == twilio.state.recordings[sid]["media"]
    assert twilio.state.recordings[sid]["deleted"] is True
