"""The recording pipeline across processes: whole calls from the Twilio emulator, webhooks
served by the app, fetches run by a real Celery worker through Redis — with Redis down
while the webhook runs, and with the worker killed in the middle of a download."""

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.core.files.storage import storages
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from contactcenter.models import Call
from recordings import crypto, ingest
from recordings.models import OutboxMessage, Recording

from .conftest import BASE_DIR, acknowledged_operator, celery_config, project_env, require_service
from .factories import PurposeFactory, published_notice

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

Status = Recording.Status
WAIT_SECONDS = 45


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PrivateRedis:
    """A Redis server of this test's own, which the test can stop and start again."""

    def __init__(self, directory):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.directory = directory
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            [
                shutil.which("redis-server"),
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
            finally:
                client.close()
        return self

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@pytest.fixture
def broker(tmp_path):
    if shutil.which("redis-server") is None:
        require_service("Redis", "redis-server is not installed")
    server = PrivateRedis(tmp_path).start()
    # This process (the app's webhooks, the outbox relay) publishes to it too.
    with celery_config(task_always_eager=False, broker_url=server.url, result_backend=None):
        yield server
    server.stop()


def worker_database_url():
    """The database this test runs against, for the worker to share."""
    database = connection.settings_dict
    if database["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{database['NAME']}"
    return (
        f"postgres://{database['USER']}@{database['HOST'] or '127.0.0.1'}:"
        f"{database['PORT'] or 5432}/{database['NAME']}"
    )


class Worker:
    def __init__(self, *, broker, twilio, log_path):
        self.log_path = log_path
        self.variables = {
            "REDIS_URL": broker.url,
            "DATABASE_URL": worker_database_url(),
            "TWILIO_API_BASE_URL": twilio.url,
            "RECORDINGS_ROOT": settings.STORAGES["recordings"]["OPTIONS"]["location"],
        }
        self.process = None

    def start(self):
        log = self.log_path.open("a")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "contactcenter",
                "worker",
                "--pool=solo",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--loglevel=INFO",
            ],
            cwd=BASE_DIR,
            env=project_env(**self.variables),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        wait_for(lambda: "ready." in self.log(), what="the worker to start", worker=self)
        return self

    def log(self):
        return self.log_path.read_text() if self.log_path.exists() else ""

    def kill(self):
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


def wait_for(condition, *, what, worker=None):
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            log = worker.log() if worker else ""
            pytest.fail(f"timed out waiting for {what}\n--- worker log ---\n{log}")
        time.sleep(0.1)


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
    _wait_for_worker_sessions_to_end()


def _wait_for_worker_sessions_to_end():
    """PostgreSQL ends a stopped worker's sessions a moment after it exits; the test database
    can only be dropped once they are gone."""
    if connection.vendor != "postgresql":
        return
    deadline = time.monotonic() + 10
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            if cursor.fetchone()[0] == 0:
                return
            time.sleep(0.1)


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


def stored_files():
    root = Path(settings.STORAGES["recordings"]["OPTIONS"]["location"])
    return sorted(p for p in root.rglob("*") if p.is_file())


def recording_status(sid):
    return Recording.objects.filter(sid=sid).values_list("status", flat=True).first()


def fetched(sid):
    """Stored, and Twilio's copy deleted (the last step of a fetch)."""
    return Recording.objects.filter(
        sid=sid, status=Status.STORED, twilio_deleted_at__isnull=False
    ).exists()


def decrypted(recording):
    key = crypto.unwrap_key(recording.key_id, bytes(recording.wrapped_key))
    with storages["recordings"].open(recording.blob_name, "rb") as blob:
        return b"".join(crypto.decrypt_all(blob, key))


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
