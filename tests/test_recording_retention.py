"""Retention by purpose: recordings purged when their last window closes, legal holds that
keep them, consent withdrawn after storage, and the admin's holds and releases."""

import io
import re

import pytest
from django.core.files.storage import storages
from django.core.management import call_command
from django.urls import reverse

from recordings import crypto, ingest, retention
from recordings.models import LegalHold, OutboxMessage, Recording, Tombstone

from .factories import consented_call
from .helpers.recordings import completed, past_retention, stored_files, twilio_copy

pytestmark = pytest.mark.django_db

Status = Recording.Status


@pytest.fixture
def call(notice, operator):
    return consented_call(operator)


@pytest.fixture
def stored(client, twilio, call):
    recording = completed(client, twilio, call)
    return ingest.fetch(recording.pk)


# --- retention, holds and purge ---------------------------------------------------------------


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
        assert [p.name for p in stored_files()] == [kept.blob_name.split("/")[-1]]

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
        assert len(stored_files()) == 1

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

        assert response.status_code == 403
        assert not LegalHold.objects.exists()
