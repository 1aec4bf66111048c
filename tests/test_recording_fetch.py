"""Fetching a completed recording from the local Twilio emulator over HTTP: stored encrypted,
Twilio's copy deleted, retried when Twilio fails, and nothing downloaded without consent."""

import hashlib
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.urls import reverse
from django.utils import timezone

from consent.models import ConsentRecord
from consent.services import record_consent, withdraw_consent
from contactcenter.models import Call
from recordings import ingest
from recordings.models import OutboxMessage, Recording, RecordingPurpose, Tombstone
from recordings.tasks import FETCH_RETRIES, fetch_recording

from .factories import CallFactory, consented_call
from .helpers.recordings import (
    completed,
    decrypted,
    fetch_messages,
    media,
    stored_files,
    twilio_copy,
)

pytestmark = pytest.mark.django_db

Status = Recording.Status


@pytest.fixture
def call(notice, operator):
    return consented_call(operator)


# --- fetching ---------------------------------------------------------------------------------


class TestFetch:
    def test_the_audio_is_stored_encrypted_and_twilios_copy_deleted(
        self, client, twilio, call, settings
    ):
        recording = completed(client, twilio, call)
        audio = media(twilio, recording)

        ingest.fetch(recording.pk)
        recording.refresh_from_db()

        assert recording.status == Status.STORED
        assert decrypted(recording) == audio
        assert recording.plaintext_size == len(audio)
        assert recording.plaintext_sha256 == hashlib.sha256(audio).hexdigest()
        [blob] = stored_files()
        stored = blob.read_bytes()
        assert recording.ciphertext_size == len(stored)
        assert recording.ciphertext_sha256 == hashlib.sha256(stored).hexdigest()
        assert recording.key_id == settings.RECORDINGS_MASTER_KEYS[0][0]
        assert recording.fetch_attempts == 1
        assert recording.partial_blob_name == ""
        assert recording.fetch_started_at is None
        assert twilio_copy(twilio, recording)["deleted"] is True
        assert recording.twilio_deleted_at is not None
        assert oct(blob.stat().st_mode & 0o777) == "0o600"

    def test_it_keeps_the_purposes_the_consent_answered_for(self, client, twilio, call):
        recording = completed(client, twilio, call)

        ingest.fetch(recording.pk)
        recording.refresh_from_db()

        windows = {
            window.purpose.code: window
            for window in RecordingPurpose.objects.filter(recording=recording)
        }
        assert set(windows) == {"quality", "training"}
        assert windows["quality"].usable_until == call.started_at + timedelta(days=30)
        assert windows["training"].usable_until == call.started_at + timedelta(days=90)
        assert windows["training"].allows_training_review is True
        assert windows["quality"].allows_training_review is False
        assert recording.retain_until == call.started_at + timedelta(days=90)

    def test_running_it_twice_stores_once(self, client, twilio, call, settings):
        recording = completed(client, twilio, call)

        ingest.fetch(recording.pk)
        ingest.fetch(recording.pk)

        assert twilio_copy(twilio, recording)["media_requests"] == 1
        assert len(stored_files()) == 1
        assert Recording.objects.get(pk=recording.pk).fetch_attempts == 1

    def test_a_fetch_in_progress_elsewhere_is_left_alone(self, client, twilio, call, settings):
        recording = completed(client, twilio, call)
        Recording.objects.filter(pk=recording.pk).update(
            fetch_started_at=timezone.now() - ingest.FETCH_LEASE / 2,
            partial_blob_name="2026/11/being-written.ccrec",
        )

        ingest.fetch(recording.pk)

        assert twilio_copy(twilio, recording).get("media_requests", 0) == 0
        assert Recording.objects.get(pk=recording.pk).status == Status.COMPLETED

    def test_the_next_attempt_deletes_what_a_killed_one_left(self, client, twilio, call, settings):
        recording = completed(client, twilio, call)
        leftover = storages["recordings"].save("2026/11/killed.ccrec", ContentFile(b"CCREC..."))
        Recording.objects.filter(pk=recording.pk).update(
            fetch_started_at=timezone.now() - ingest.FETCH_LEASE - timedelta(seconds=1),
            partial_blob_name=leftover,
            fetch_attempts=1,
        )

        ingest.fetch(recording.pk)
        recording.refresh_from_db()

        assert recording.status == Status.STORED
        assert recording.fetch_attempts == 2
        assert not storages["recordings"].exists(leftover)
        assert [p.name for p in stored_files()] == [recording.blob_name.split("/")[-1]]

    def test_a_download_cut_short_stores_nothing_and_keeps_twilios_copy(
        self, client, twilio, call, settings
    ):
        recording = completed(client, twilio, call, cut_after=5000)

        with pytest.raises(ingest.FetchError) as raised:
            ingest.fetch(recording.pk)

        assert raised.value.retryable
        recording.refresh_from_db()
        assert recording.status == Status.COMPLETED
        assert recording.blob_name == ""
        assert recording.partial_blob_name == ""  # the lease is given back
        assert stored_files() == []
        assert twilio_copy(twilio, recording)["deleted"] is False

    def test_twilio_errors_are_retried_then_succeed(
        self, client, twilio, call, tasks_in_process, monkeypatch
    ):
        from recordings import tasks

        monkeypatch.setattr(tasks, "BACKOFF_BASE_SECONDS", 0)
        recording = completed(client, twilio, call, fail_times=2)

        # In-process, each retry runs at once (no countdown), after the attempt that asked.
        tasks_in_process.conf.task_eager_propagates = False  # a retry is not a failure
        fetch_recording.delay(recording.pk)
        recording.refresh_from_db()

        assert recording.status == Status.STORED
        assert twilio_copy(twilio, recording)["media_requests"] == 3
        assert recording.fetch_attempts == 3
        assert recording.last_error == ""

    def test_after_the_last_retry_it_shows_fetch_failed_and_can_be_retried(
        self,
        client,
        twilio,
        call,
        tasks_in_process,
        monkeypatch,
        supervisor,
        django_capture_on_commit_callbacks,
    ):
        from recordings import tasks

        monkeypatch.setattr(tasks, "BACKOFF_BASE_SECONDS", 0)
        recording = completed(client, twilio, call, fail_times=FETCH_RETRIES + 1)

        tasks_in_process.conf.task_eager_propagates = False  # a retry is not a failure
        fetch_recording.delay(recording.pk)
        recording.refresh_from_db()

        assert recording.status == Status.FETCH_FAILED
        assert recording.get_status_display().startswith("取得失敗")
        assert "503" in recording.last_error
        assert twilio_copy(twilio, recording)["deleted"] is False

        client.force_login(supervisor)
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                reverse("admin:recordings_recording_changelist"),
                {"action": "retry_fetch", "_selected_action": [recording.pk]},
                follow=True,
            )

        assert response.status_code == 200
        recording.refresh_from_db()
        assert recording.status == Status.STORED
        assert twilio_copy(twilio, recording)["deleted"] is True

    def test_a_recording_twilio_does_not_have_fails_after_a_few_tries(
        self, client, twilio, call, tasks_in_process, monkeypatch
    ):
        """Twilio's media may lag its callback, so a 404 is asked again a few times, then the
        recording is 取得失敗 (fetch failed) for a person to look at."""
        from recordings import tasks

        monkeypatch.setattr(tasks, "BACKOFF_BASE_SECONDS", 0)
        tasks_in_process.conf.task_eager_propagates = False  # a retry is not a failure
        recording = completed(client, twilio, call)
        twilio_copy(twilio, recording)["deleted"] = True

        fetch_recording.delay(recording.pk)
        recording.refresh_from_db()

        assert recording.status == Status.FETCH_FAILED
        assert "404" in recording.last_error
        assert recording.fetch_attempts == 1 + ingest.MEDIA_NOT_READY_RETRIES

    def test_a_lost_fetch_task_is_queued_again(self, client, twilio, call):
        recording = completed(client, twilio, call)
        OutboxMessage.objects.update(published_at=timezone.now())  # handed to a broker that lost it
        later = timezone.now() + ingest.STALLED_AFTER + timedelta(minutes=1)

        assert ingest.requeue_stalled_fetches(now=timezone.now()) == 0
        assert ingest.requeue_stalled_fetches(now=later) == 1

        assert fetch_messages().filter(published_at__isnull=True).count() == 1
        assert fetch_messages().last().kwargs == {"recording_id": recording.pk}

    def test_no_plaintext_audio_reaches_the_storage_directory(
        self, client, twilio, operator, notice, settings
    ):
        audio = []
        for _ in range(3):
            recording = completed(client, twilio, consented_call(operator))
            audio.append(media(twilio, recording))
            ingest.fetch(recording.pk)

        files = stored_files()
        assert len(files) == 3
        for path in files:
            content = path.read_bytes()
            assert content.startswith(b"CCREC")
            assert b"RIFF" not in content
            assert b"WAVE" not in content
            assert b"fmt " not in content
            for sample in audio:
                # No 32-byte window of any recording's audio appears in any stored file.
                for start in range(44, len(sample) - 32, 4096):
                    assert sample[start : start + 32] not in content


# --- the consent gate at ingest ---------------------------------------------------------------


def refuse_for_call(call):
    """The caller, who agreed at the keypad, tells the operator during the call that they do
    not want it recorded after all (one keypress answer per call; this one is spoken)."""
    record_consent(
        customer=call.customer,
        call=call,
        party_role=ConsentRecord.PartyRole.CALLER,
        decision=ConsentRecord.Decision.REFUSED,
        method=ConsentRecord.Method.VERBAL,
    )


class TestConsentGate:
    @pytest.mark.parametrize(
        ("change", "reason"),
        [
            (refuse_for_call, Tombstone.Reason.NO_CONSENT),
            (
                lambda call: withdraw_consent(customer=call.customer),
                Tombstone.Reason.CONSENT_WITHDRAWN,
            ),
            (
                lambda call: Call.objects.filter(pk=call.pk).update(
                    customer=CallFactory().customer
                ),
                Tombstone.Reason.NO_CONSENT,
            ),
            (
                lambda call: (
                    withdraw_consent(customer=call.customer)
                    and record_consent(
                        operator=call.operator,
                        party_role=ConsentRecord.PartyRole.OPERATOR,
                        decision=ConsentRecord.Decision.WITHDRAWN,
                        method=ConsentRecord.Method.WEB_FORM,
                    )
                ),
                Tombstone.Reason.CONSENT_WITHDRAWN,
            ),
        ],
        ids=["refused", "withdrawn", "no-consent", "operator-withdrew"],
    )
    def test_without_consent_nothing_is_downloaded_and_twilios_copy_is_deleted(
        self, client, twilio, call, settings, change, reason
    ):
        recording = completed(client, twilio, call)
        change(call)

        ingest.fetch(recording.pk)
        recording.refresh_from_db()

        assert recording.status == Status.REFUSED
        assert twilio_copy(twilio, recording).get("media_requests", 0) == 0
        assert twilio_copy(twilio, recording)["deleted"] is True
        assert recording.twilio_deleted_at is not None
        assert stored_files() == []
        tombstone = recording.tombstone
        assert tombstone.reason == reason
        assert tombstone.deleted_by_system == "consent gate at ingest"
        assert tombstone.detail
        assert tombstone.had_stored_copy is False

    def test_an_operator_without_standing_consent_stops_the_ingest(
        self, client, twilio, notice, operator
    ):
        record_consent(
            operator=operator,
            party_role=ConsentRecord.PartyRole.OPERATOR,
            decision=ConsentRecord.Decision.WITHDRAWN,
            method=ConsentRecord.Method.WEB_FORM,
        )
        call = consented_call(operator)
        recording = completed(client, twilio, call)

        ingest.fetch(recording.pk)

        assert Recording.objects.get(pk=recording.pk).status == Status.REFUSED
        assert twilio_copy(twilio, recording).get("media_requests", 0) == 0
