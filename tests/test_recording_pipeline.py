"""The recording pipeline in one process: Twilio's recording callbacks, the outbox, fetching
and encrypting from the local Twilio emulator over HTTP, the consent gate, retention by
purpose, legal holds, purge, consent withdrawn after storage, key rotation and the admin."""

import hashlib
import io
import re
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from consent.models import ConsentRecord
from consent.services import record_consent, withdraw_consent
from contactcenter.models import Call
from recordings import crypto, ingest, retention
from recordings.models import LegalHold, OutboxMessage, Recording, RecordingPurpose, Tombstone
from recordings.tasks import FETCH_RETRIES, fetch_recording

from .conftest import twilio_post
from .factories import CallFactory, consented_call

pytestmark = pytest.mark.django_db

Status = Recording.Status
CALLBACK = "/twilio/recordings/status"


@pytest.fixture
def call(notice, operator):
    return consented_call(operator)


def at_twilio(twilio, call, *, seconds=2, **faults):
    """Twilio recorded ``call`` and holds the audio (with ``faults`` when it is served)."""
    state = twilio.state
    if call.sid not in state.calls:
        state.control("POST", "/_emulator/calls", {"sid": call.sid})
    _, resource = state.control("POST", f"/_emulator/calls/{call.sid}/recordings", {})
    _, resource = state.control(
        "POST", f"/_emulator/recordings/{resource['sid']}/complete", {"seconds": seconds, **faults}
    )
    return resource


def callback(client, call, resource, status="completed", **extra):
    params = {
        "AccountSid": resource["account_sid"],
        "CallSid": call.sid,
        "RecordingSid": resource["sid"],
        "RecordingUrl": resource["media_url"],
        "RecordingStatus": status,
        "RecordingChannels": "2",
        "RecordingSource": "DialVerb",
        "RecordingStartTime": resource["start_time"],
        "RecordingTrack": "both",
        **extra,
    }
    if status == "completed":
        params.setdefault("RecordingDuration", resource["duration"])
    return twilio_post(client, CALLBACK, params)


def completed(client, twilio, call, **faults):
    """A recording Twilio finished and told us about; its fetch is waiting in the outbox."""
    resource = at_twilio(twilio, call, **faults)
    assert callback(client, call, resource).status_code == 200
    return Recording.objects.get(sid=resource["sid"])


def media(twilio, recording):
    return twilio.state.recordings[recording.sid]["media"]


def twilio_copy(twilio, recording):
    return twilio.state.recordings[recording.sid]


def stored_files(settings):
    root = settings.STORAGES["recordings"]["OPTIONS"]["location"]
    from pathlib import Path

    return sorted(p for p in Path(root).rglob("*") if p.is_file())


def decrypted(recording):
    key = crypto.unwrap_key(recording.key_id, bytes(recording.wrapped_key))
    with storages["recordings"].open(recording.blob_name, "rb") as blob:
        return b"".join(crypto.decrypt_all(blob, key))


def fetch_messages():
    return OutboxMessage.objects.filter(task=ingest.FETCH_TASK)


# --- the recording status callback ---------------------------------------------------------


class TestRecordingCallback:
    def test_in_progress_then_completed_keeps_the_details_and_queues_one_fetch(
        self, client, twilio, call
    ):
        resource = at_twilio(twilio, call, seconds=3)

        response = callback(client, call, resource, status="in-progress")
        recording = Recording.objects.get(sid=resource["sid"])

        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/xml")
        assert recording.call == call
        assert recording.status == Status.IN_PROGRESS
        assert recording.channels == 2
        assert recording.source == "DialVerb"
        assert recording.started_at is not None
        assert recording.media_url == resource["media_url"]
        assert not fetch_messages().exists()

        callback(client, call, resource)
        recording.refresh_from_db()

        assert recording.status == Status.COMPLETED
        assert recording.duration == 3
        message = fetch_messages().get()
        assert message.kwargs == {"recording_id": recording.pk}
        assert message.published_at is None  # published once the transaction commits

    def test_a_repeated_completed_callback_queues_nothing_more(self, client, twilio, call):
        resource = at_twilio(twilio, call)

        for _ in range(3):
            assert callback(client, call, resource).status_code == 200

        assert Recording.objects.count() == 1
        assert fetch_messages().count() == 1

    def test_a_late_in_progress_callback_does_not_move_a_recording_back(self, client, twilio, call):
        resource = at_twilio(twilio, call)
        callback(client, call, resource)

        callback(client, call, resource, status="in-progress")

        assert Recording.objects.get().status == Status.COMPLETED
        assert fetch_messages().count() == 1

    def test_a_callback_after_storage_changes_nothing(self, client, twilio, call):
        recording = completed(client, twilio, call)
        ingest.fetch(recording.pk)

        callback(client, call, {**at_twilio(twilio, call), "sid": recording.sid})

        assert Recording.objects.get(pk=recording.pk).status == Status.STORED
        assert fetch_messages().count() == 1

    def test_absent_and_failed_recordings_queue_no_fetch(self, client, twilio, call):
        absent, failed = at_twilio(twilio, call), at_twilio(twilio, call)

        callback(client, call, absent, status="absent")
        callback(client, call, failed, status="failed", ErrorCode="13617")

        assert Recording.objects.get(sid=absent["sid"]).status == Status.ABSENT
        failed_row = Recording.objects.get(sid=failed["sid"])
        assert failed_row.status == Status.FAILED
        assert failed_row.twilio_error_code == "13617"
        assert not fetch_messages().exists()

    @pytest.mark.parametrize(
        "change",
        [
            {"CallSid": "CA" + "0" * 32},  # a call we do not know
            {"RecordingSid": "XX123"},
            {"RecordingStatus": "exploded"},
            {"RecordingDuration": "many", "RecordingStartTime": "yesterday"},
        ],
    )
    def test_odd_callbacks_answer_twiml_and_store_nothing_wrong(self, client, twilio, call, change):
        resource = at_twilio(twilio, call)

        response = callback(client, call, resource, **change)

        assert response.status_code == 200
        assert b"<Response" in response.content
        if "RecordingDuration" in change:  # the rest is kept, the garbage is not
            recording = Recording.objects.get()
            assert recording.duration is None
            assert recording.started_at is None
        else:
            assert not Recording.objects.exists()

    def test_an_unsigned_callback_is_refused_and_stores_nothing(self, client, twilio, call):
        resource = at_twilio(twilio, call)

        response = client.post(CALLBACK, {"CallSid": call.sid, "RecordingSid": resource["sid"]})

        assert response.status_code == 403
        assert not Recording.objects.exists()


# --- the outbox -------------------------------------------------------------------------------


class TestOutbox:
    def test_with_redis_down_the_webhook_answers_and_the_fetch_waits(
        self, client, twilio, call, broker_down, django_capture_on_commit_callbacks
    ):
        resource = at_twilio(twilio, call)

        with django_capture_on_commit_callbacks(execute=True):
            response = callback(client, call, resource)

        assert response.status_code == 200
        message = fetch_messages().get()
        assert message.published_at is None
        assert message.attempts == 1
        assert "OperationalError" in message.last_error or "Error" in message.last_error
        assert Recording.objects.get().status == Status.COMPLETED

    def test_once_redis_is_back_the_relay_delivers_it(
        self, client, twilio, call, django_capture_on_commit_callbacks, request
    ):
        broker = request.getfixturevalue("broker_down")
        with django_capture_on_commit_callbacks(execute=True):
            callback(client, call, at_twilio(twilio, call))
        assert fetch_messages().get().published_at is None
        broker.conf.update(task_always_eager=True)  # the broker is back, and works fast

        out = io.StringIO()
        call_command("relay_outbox", stdout=out)

        assert "1 task(s) published" in out.getvalue()
        assert fetch_messages().get().published_at is not None
        recording = Recording.objects.get()
        assert recording.status == Status.STORED

    def test_the_relay_command_says_clearly_when_the_broker_is_down(
        self, client, twilio, call, broker_down
    ):
        callback(client, call, at_twilio(twilio, call))

        from django.core.management.base import CommandError

        with pytest.raises(CommandError, match="Could not publish to the broker"):
            call_command("relay_outbox")
        assert fetch_messages().get().published_at is None

    def test_after_commit_the_fetch_runs(
        self, client, twilio, call, tasks_in_process, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks(execute=True):
            callback(client, call, at_twilio(twilio, call))

        assert Recording.objects.get().status == Status.STORED
        assert fetch_messages().get().published_at is not None


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
        [blob] = stored_files(settings)
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
        assert len(stored_files(settings)) == 1
        assert Recording.objects.get(pk=recording.pk).fetch_attempts == 1

    def test_a_fetch_in_progress_elsewhere_is_left_alone(self, client, twilio, call, settings):
        recording = completed(client, twilio, call)
        Recording.objects.filter(pk=recording.pk).update(
            fetch_started_at=timezone.now() - timedelta(minutes=2),
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
        assert [p.name for p in stored_files(settings)] == [recording.blob_name.split("/")[-1]]

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
        assert stored_files(settings) == []
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

    def test_a_recording_twilio_does_not_have_fails_without_retrying(
        self, client, twilio, call, tasks_in_process
    ):
        recording = completed(client, twilio, call)
        twilio_copy(twilio, recording)["deleted"] = True

        fetch_recording.delay(recording.pk)
        recording.refresh_from_db()

        assert recording.status == Status.FETCH_FAILED
        assert "404" in recording.last_error
        assert recording.fetch_attempts == 1

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

        files = stored_files(settings)
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
    record_consent(
        customer=call.customer,
        call=call,
        party_role=ConsentRecord.PartyRole.CALLER,
        decision=ConsentRecord.Decision.REFUSED,
        method=ConsentRecord.Method.IVR_KEYPRESS,
        digits="2",
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
        assert stored_files(settings) == []
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


# --- retention, holds and purge ---------------------------------------------------------------


@pytest.fixture
def stored(client, twilio, call):
    recording = completed(client, twilio, call)
    return ingest.fetch(recording.pk)


def past_retention(recording):
    Recording.objects.filter(pk=recording.pk).update(
        retain_until=timezone.now() - timedelta(days=1)
    )


class TestPurge:
    def test_only_what_is_due_is_purged(self, client, twilio, operator, notice, settings):
        due, kept = (
            ingest.fetch(completed(client, twilio, consented_call(operator)).pk) for _ in range(2)
        )
        past_retention(due)

        assert retention.purge_due() == 1

        due.refresh_from_db()
        kept.refresh_from_db()
        assert due.status == Status.PURGED
        assert due.wrapped_key is None
        assert due.key_id == ""
        assert due.blob_name == ""
        assert due.tombstone.reason == Tombstone.Reason.RETENTION
        assert due.tombstone.had_stored_copy is True
        assert due.tombstone.plaintext_sha256 == due.plaintext_sha256
        assert due.tombstone.deleted_by_system == "purge"
        assert kept.status == Status.STORED
        assert [p.name for p in stored_files(settings)] == [kept.blob_name.split("/")[-1]]

    def test_purging_again_does_nothing(self, stored):
        past_retention(stored)

        assert retention.purge_due() == 1
        assert retention.purge_due() == 0
        assert Tombstone.objects.count() == 1

    def test_a_dry_run_counts_and_changes_nothing(self, stored, settings):
        past_retention(stored)

        out = io.StringIO()
        call_command("purge_recordings", "--dry-run", stdout=out)

        assert "1 recording(s) would be purged" in out.getvalue()
        assert Recording.objects.get().status == Status.STORED
        assert len(stored_files(settings)) == 1

        call_command("purge_recordings", stdout=out)
        assert "1 recording(s) purged" in out.getvalue()
        assert Recording.objects.get().status == Status.PURGED

    def test_the_key_is_gone_so_even_a_backup_of_the_file_is_unreadable(self, stored):
        backup = storages["recordings"].open(stored.blob_name).read()
        past_retention(stored)

        retention.purge_due()

        assert Recording.objects.get().wrapped_key is None
        # Nothing is left that could open the backup: a fresh key fails, as any would.
        with pytest.raises(crypto.RecordingIntegrityError):
            b"".join(crypto.decrypt_all(io.BytesIO(backup), crypto.new_data_key()))

    def test_a_held_recording_is_never_purged_and_release_purges_it(self, stored, supervisor):
        past_retention(stored)
        hold = retention.place_hold(stored, reason="係争中 (事件番号 2026-17)", by=supervisor)

        assert retention.purge_due() == 0
        assert Recording.objects.get().status == Status.STORED

        retention.release_hold(hold, reason="和解成立", by=supervisor)

        stored.refresh_from_db()
        assert stored.status == Status.PURGED
        assert stored.tombstone.deleted_by == supervisor
        hold.refresh_from_db()
        assert hold.released_by == supervisor
        assert hold.release_reason == "和解成立"

    def test_one_of_two_holds_released_keeps_it(self, stored, supervisor, compliance_officer):
        past_retention(stored)
        first = retention.place_hold(stored, reason="A", by=supervisor)
        retention.place_hold(stored, reason="B", by=compliance_officer)

        retention.release_hold(first, reason="A ended", by=supervisor)

        assert Recording.objects.get().status == Status.STORED

    def test_a_release_before_retention_ends_keeps_the_recording(self, stored, supervisor):
        hold = retention.place_hold(stored, reason="A", by=supervisor)

        retention.release_hold(hold, reason="done", by=supervisor)

        assert Recording.objects.get().status == Status.STORED

    def test_holds_need_a_reason(self, stored, supervisor):
        with pytest.raises(ValueError, match="理由"):
            retention.place_hold(stored, reason="  ", by=supervisor)
        assert not LegalHold.objects.exists()

    def test_twilio_deletions_that_failed_are_retried_until_confirmed(
        self, client, twilio, call, settings
    ):
        recording = completed(client, twilio, call)
        twilio_url = settings.TWILIO_API_BASE_URL
        original = ingest.delete_twilio_copy
        # Twilio cannot be reached at the moment of deletion (the fetch itself went through).
        ingest.fetch(recording.pk)
        Recording.objects.filter(pk=recording.pk).update(twilio_deleted_at=None)
        twilio_copy(twilio, recording)["deleted"] = False
        settings.TWILIO_API_BASE_URL = "http://127.0.0.1:1"

        retention.purge_due()

        assert Recording.objects.get().twilio_deleted_at is None
        assert "Twilio deletion" in Recording.objects.get().last_error
        settings.TWILIO_API_BASE_URL = twilio_url

        retention.purge_due()

        assert Recording.objects.get().twilio_deleted_at is not None
        assert twilio_copy(twilio, recording)["deleted"] is True
        assert ingest.delete_twilio_copy is original

    def test_two_purges_at_once_never_take_the_same_recording(self, stored):
        """Rows are claimed with SKIP LOCKED: a claimed row is not seen by the second run."""
        past_retention(stored)
        claimed = list(
            Recording.objects.due_for_purge().select_for_update(skip_locked=True).values("pk")
        )
        assert claimed == [{"pk": stored.pk}]
        assert retention.purge_due() == 1
        assert retention.purge_due() == 0


# --- consent taken back after storage ---------------------------------------------------------


class TestConsentWithdrawnAfterStorage:
    def test_a_customer_who_withdraws_has_their_recordings_purged(
        self, client, twilio, operator, notice, tasks_in_process, django_capture_on_commit_callbacks
    ):
        call = consented_call(operator)
        mine = ingest.fetch(completed(client, twilio, call).pk)
        other = ingest.fetch(completed(client, twilio, consented_call(operator)).pk)

        with django_capture_on_commit_callbacks(execute=True):
            retention.withdraw_consent(customer=call.customer, note="電話で撤回の申出")

        mine.refresh_from_db()
        other.refresh_from_db()
        assert mine.status == Status.PURGED
        assert mine.consent_withdrawn_at is not None
        assert mine.tombstone.reason == Tombstone.Reason.CONSENT_WITHDRAWN
        assert other.status == Status.STORED

    def test_withdrawal_closes_every_purpose_window_at_once(self, client, twilio, call):
        recording = ingest.fetch(completed(client, twilio, call).pk)

        retention.withdraw_consent(customer=call.customer)

        recording.refresh_from_db()
        assert recording.consent_withdrawn_at is not None
        assert all(not window.is_open for window in recording.purposes.all())
        message = OutboxMessage.objects.get(task=retention.PURGE_TASK)
        assert message.kwargs == {"recording_ids": [recording.pk]}

    def test_a_held_recording_waits_for_its_release(
        self, client, twilio, call, supervisor, tasks_in_process, django_capture_on_commit_callbacks
    ):
        recording = ingest.fetch(completed(client, twilio, call).pk)
        hold = retention.place_hold(recording, reason="係争中", by=supervisor)

        with django_capture_on_commit_callbacks(execute=True):
            retention.withdraw_consent(customer=call.customer)

        assert Recording.objects.get().status == Status.STORED
        retention.release_hold(hold, reason="終結", by=supervisor)
        recording.refresh_from_db()
        assert recording.status == Status.PURGED
        assert recording.tombstone.reason == Tombstone.Reason.CONSENT_WITHDRAWN

    def test_an_operator_who_withdraws_takes_their_calls_with_them(
        self, client, twilio, call, other_operator
    ):
        mine = ingest.fetch(completed(client, twilio, call).pk)
        theirs = ingest.fetch(completed(client, twilio, consented_call(other_operator)).pk)

        retention.withdraw_consent(operator=call.operator)

        assert Recording.objects.get(pk=mine.pk).consent_withdrawn_at is not None
        assert Recording.objects.get(pk=theirs.pk).consent_withdrawn_at is None


# --- key rotation -----------------------------------------------------------------------------


def test_rotation_rewraps_every_key_without_touching_the_audio(
    client, twilio, operator, notice, settings
):
    settings.RECORDINGS_MASTER_KEYS = [("old", b"o" * 32)]
    recordings = [
        ingest.fetch(completed(client, twilio, consented_call(operator)).pk) for _ in range(3)
    ]
    files = {path: path.read_bytes() for path in stored_files(settings)}
    settings.RECORDINGS_MASTER_KEYS = [("new", b"n" * 32), ("old", b"o" * 32)]

    out = io.StringIO()
    call_command("rotate_recording_keys", "--batch-size", "2", stdout=out)

    assert "3 recording key(s) re-wrapped under new" in out.getvalue()
    assert {path: path.read_bytes() for path in stored_files(settings)} == files
    settings.RECORDINGS_MASTER_KEYS = [("new", b"n" * 32)]  # the old key can now go
    for recording in recordings:
        recording.refresh_from_db()
        assert recording.key_id == "new"
        assert hashlib.sha256(decrypted(recording)).hexdigest() == recording.plaintext_sha256

    call_command("rotate_recording_keys", stdout=out)
    assert "0 recording key(s) re-wrapped" in out.getvalue()


# --- the admin --------------------------------------------------------------------------------


class TestAdmin:
    def test_the_detail_page_shows_the_pipeline_state_read_only(self, client, stored, supervisor):
        client.force_login(supervisor)

        page = client.get(reverse("admin:recordings_recording_change", args=[stored.pk]))

        assert page.status_code == 200
        text = page.content.decode()
        assert stored.plaintext_sha256 in text
        assert stored.key_id in text
        assert "品質向上" in text and "研修" in text
        assert 'name="status"' not in text  # read-only

    @pytest.mark.parametrize(
        ("query", "expected"),
        [
            ("status__exact=stored", 1),
            ("status__exact=fetch_failed", 0),
            ("held=yes", 0),
            ("held=no", 1),
            ("due=yes", 1),
        ],
    )
    def test_the_list_filters(self, client, stored, supervisor, query, expected):
        past_retention(stored)
        client.force_login(supervisor)

        page = client.get(reverse("admin:recordings_recording_changelist") + "?" + query)

        assert page.status_code == 200
        assert len(re.findall(r'name="_selected_action"', page.content.decode())) == expected

    def test_placing_a_hold_asks_for_a_reason_first(self, client, stored, supervisor):
        client.force_login(supervisor)
        url = reverse("admin:recordings_recording_changelist")
        selection = {"action": "place_hold", "_selected_action": [stored.pk]}

        page = client.post(url, selection)
        assert page.status_code == 200
        assert "reason" in page.content.decode()
        assert not LegalHold.objects.exists()

        client.post(url, {**selection, "confirm": "1", "reason": "  "})
        assert not LegalHold.objects.exists()

        client.post(url, {**selection, "confirm": "1", "reason": "係争中"})
        hold = LegalHold.objects.get()
        assert hold.placed_by == supervisor
        assert hold.reason == "係争中"

    def test_releasing_a_due_recording_purges_it(self, client, stored, supervisor):
        past_retention(stored)
        retention.place_hold(stored, reason="係争中", by=supervisor)
        client.force_login(supervisor)

        client.post(
            reverse("admin:recordings_recording_changelist"),
            {
                "action": "release_holds",
                "_selected_action": [stored.pk],
                "confirm": "1",
                "reason": "終結",
            },
        )

        assert Recording.objects.get().status == Status.PURGED

    def test_an_operator_cannot_place_holds(self, client, stored, operator):
        client.force_login(operator.user)

        response = client.post(
            reverse("admin:recordings_recording_changelist"),
            {
                "action": "place_hold",
                "_selected_action": [stored.pk],
                "confirm": "1",
                "reason": "x",
            },
        )

        assert response.status_code in (302, 403)
        assert not LegalHold.objects.exists()
