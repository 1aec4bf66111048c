"""Consent is final at commit: a withdrawal while the audio downloads leaves no copy here and
none at Twilio, and a recording we could not fetch (取得失敗) is deleted at Twilio when its
consent is withdrawn or its retention ends."""

import threading
import time

import pytest
from django.db import connection

from recordings import access, ingest, retention
from recordings.models import Recording, Tombstone
from recordings.tasks import FETCH_RETRIES, fetch_recording

from .factories import consented_call, recording_notice
from .helpers.recordings import (
    at_twilio,
    callback,
    past_retention,
    stored_files,
    twilio_copy,
    waiting,
)
from .helpers.services import wait_for
from .helpers.staff import acknowledged_operator

Status = Recording.Status


@pytest.fixture
def call(live_db):
    recording_notice()
    return consented_call(acknowledged_operator("op"))


def in_thread(work):
    """Run ``work`` in a thread of its own (with its own database connection)."""
    errors = []

    def run():
        try:
            work()
        except Exception as error:  # reported by the test, not lost in the thread
            errors.append(error)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, errors


def failed_fetch(client, twilio, call, tasks_in_process, monkeypatch):
    """A recording Twilio would not serve however often we asked: 取得失敗."""
    from recordings import tasks

    monkeypatch.setattr(tasks, "BACKOFF_BASE_SECONDS", 0)
    recording = waiting(twilio, call, fail_times=FETCH_RETRIES + 1)
    tasks_in_process.conf.task_eager_propagates = False  # a retry is not a failure
    fetch_recording.delay(recording.pk)
    recording.refresh_from_db()
    assert recording.status == Status.FETCH_FAILED
    return recording


def test_a_withdrawal_while_the_audio_downloads_leaves_no_copy_anywhere(client, twilio, call):
    """GIVEN a fetch streaming slow media WHEN the customer withdraws consent from another
    thread mid-download THEN the fetch, re-checking consent at commit, stores nothing: the
    recording is refused with reason "consent withdrawn", our file is gone, Twilio's copy is
    deleted, and nothing can be played."""
    recording = waiting(twilio, call, seconds=4, trickle_seconds=2)

    def withdraw_mid_download():
        wait_for(
            lambda: twilio_copy(twilio, recording).get("media_requests", 0) >= 1,
            what="the download to start",
        )
        time.sleep(0.3)  # well inside the two seconds the download takes
        retention.withdraw_consent(customer=call.customer, note="通話中に撤回")

    thread, errors = in_thread(withdraw_mid_download)
    ingest.fetch(recording.pk)
    thread.join(timeout=30)

    assert errors == []
    recording.refresh_from_db()
    assert recording.status == Status.REFUSED
    assert recording.consent_withdrawn_at is not None
    assert recording.tombstone.reason == Tombstone.Reason.CONSENT_WITHDRAWN
    assert recording.blob_name == "" and recording.wrapped_key is None
    assert stored_files() == []
    assert twilio_copy(twilio, recording)["deleted"] is True
    assert recording.twilio_deleted_at is not None
    playable = [r for r in Recording.objects.all() if access.open_windows(r).exists()]
    assert playable == []


def test_a_recording_still_at_twilio_when_consent_is_withdrawn_is_never_fetched(
    client, twilio, call
):
    """A recording still being made when the caller withdraws is refused when it completes,
    with reason "consent withdrawn", and Twilio's copy deleted."""
    resource = at_twilio(twilio, call)
    assert callback(client, call, resource, status="in-progress").status_code == 200
    retention.withdraw_consent(customer=call.customer)

    callback(client, call, resource)
    recording = ingest.fetch(Recording.objects.get(sid=resource["sid"]).pk)

    assert recording.status == Status.REFUSED
    assert recording.tombstone.reason == Tombstone.Reason.CONSENT_WITHDRAWN
    assert twilio_copy(twilio, recording).get("media_requests", 0) == 0
    assert twilio_copy(twilio, recording)["deleted"] is True


def test_a_failed_fetch_is_deleted_at_twilio_when_consent_is_withdrawn(
    client, twilio, call, tasks_in_process, monkeypatch, django_capture_on_commit_callbacks
):
    recording = failed_fetch(client, twilio, call, tasks_in_process, monkeypatch)
    assert twilio_copy(twilio, recording)["deleted"] is False

    with django_capture_on_commit_callbacks(execute=True):
        retention.withdraw_consent(customer=call.customer)

    recording.refresh_from_db()
    assert recording.status == Status.PURGED
    assert recording.tombstone.reason == Tombstone.Reason.CONSENT_WITHDRAWN
    assert recording.tombstone.had_stored_copy is False
    assert twilio_copy(twilio, recording)["deleted"] is True
    assert recording.twilio_deleted_at is not None


def test_a_failed_fetch_is_deleted_at_twilio_when_its_retention_ends(
    client, twilio, call, tasks_in_process, monkeypatch
):
    recording = failed_fetch(client, twilio, call, tasks_in_process, monkeypatch)
    assert recording.retain_until is not None  # the window its consent allowed

    assert retention.purge_due() == 0
    past_retention(recording)
    assert retention.purge_due() == 1

    recording.refresh_from_db()
    assert recording.status == Status.PURGED
    assert recording.tombstone.reason == Tombstone.Reason.RETENTION
    assert recording.tombstone.had_stored_copy is False
    assert twilio_copy(twilio, recording)["deleted"] is True
