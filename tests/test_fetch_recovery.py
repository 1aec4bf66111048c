"""Recovery of a fetch: media Twilio serves late (401/404) is asked for again a few times,
database errors are retried like network errors, a failed DELETE is retried by its own task,
and leases and audit times follow the database's clock, not the worker's."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models.functions import Now
from django.utils import timezone

from audit import services as audit
from audit.models import AccessEvent
from recordings import ingest
from recordings.models import OutboxMessage, Recording
from recordings.tasks import delete_twilio_copy, fetch_recording

from .factories import consented_call, recording_notice
from .helpers.recordings import media_requests, twilio_copy, waiting
from .helpers.staff import acknowledged_operator

pytestmark = pytest.mark.django_db(transaction=True)

Status = Recording.Status


@pytest.fixture
def call(live_db):
    recording_notice()
    return consented_call(acknowledged_operator("op"))


class Clock:
    """``django.utils.timezone`` as seen by a host whose clock is ``offset`` off."""

    def __init__(self, offset):
        self.offset = offset

    def __getattr__(self, name):
        return getattr(timezone, name)

    def now(self):
        return timezone.now() + self.offset


# --- media that lags the callback ---------------------------------------------------------


@pytest.mark.parametrize(("status", "times"), [(401, 1), (404, 2)])
def test_media_not_served_yet_is_asked_for_again(twilio, call, retries_at_once, status, times):
    recording = waiting(twilio, call, fail_times=times, fail_status=status)

    fetch_recording.delay(recording.pk)

    recording.refresh_from_db()
    assert recording.status == Status.STORED
    assert media_requests(twilio, recording) == times + 1
    assert twilio_copy(twilio, recording)["deleted"] is True
    assert recording.last_error == ""


def test_an_unexpected_fault_is_shown_on_the_recording_not_only_in_the_log(
    twilio, call, retries_at_once, client
):
    """GIVEN a call whose stored start is nonsense (year 9999: its purpose windows cannot be
    computed) WHEN its recording is fetched THEN the fault is on the recording, where the
    admin and /healthz show it, and Twilio keeps its copy."""
    from contactcenter.models import Call

    Call.objects.filter(pk=call.pk).update(started_at=timezone.now().replace(year=9999))
    recording = waiting(twilio, call)

    fetch_recording.delay(recording.pk)

    recording.refresh_from_db()
    assert recording.last_error.startswith("OverflowError: ")
    assert recording.status != Status.STORED
    assert twilio_copy(twilio, recording)["deleted"] is False
    health = client.get("/healthz").json()
    assert health["checks"]["pipeline"]["newest_error"]["recording"] == recording.sid


def test_media_that_never_comes_is_fetch_failed_after_a_few_tries(twilio, call, retries_at_once):
    recording = waiting(twilio, call, fail_times=100, fail_status=404)

    fetch_recording.delay(recording.pk)

    recording.refresh_from_db()
    assert recording.status == Status.FETCH_FAILED
    assert media_requests(twilio, recording) == 1 + ingest.MEDIA_NOT_READY_RETRIES
    assert "404" in recording.last_error
    assert twilio_copy(twilio, recording)["deleted"] is False


# --- Twilio's copy ------------------------------------------------------------------------


def test_a_failed_deletion_is_retried_by_its_own_task_and_its_error_cleared(
    twilio, call, retries_at_once
):
    """Twilio answers the DELETE 503 twice: the fetch notes it and queues the deletion, whose
    task retries until Twilio confirms, then clears the error the admin showed."""
    recording = waiting(twilio, call, delete_fail_times=2)

    ingest.fetch(recording.pk)

    recording.refresh_from_db()
    deletes = [r for r in twilio.state.requests if r["method"] == "DELETE"]
    assert len(deletes) == 3
    assert OutboxMessage.objects.filter(
        task=ingest.DELETE_TASK, kwargs={"recording_id": recording.pk}
    ).exists()
    assert recording.status == Status.STORED
    assert twilio_copy(twilio, recording)["deleted"] is True
    assert recording.twilio_deleted_at is not None
    assert recording.last_error == ""


def test_the_deletion_task_never_deletes_what_is_not_ours_yet(twilio, call):
    recording = waiting(twilio, call)

    delete_twilio_copy.apply(args=[recording.pk])

    assert twilio_copy(twilio, recording)["deleted"] is False
    assert not [r for r in twilio.state.requests if r["method"] == "DELETE"]


# --- the database's clock -----------------------------------------------------------------


def test_a_worker_with_a_fast_clock_cannot_take_over_a_live_lease(twilio, call, monkeypatch):
    recording = waiting(twilio, call)
    Recording.objects.filter(pk=recording.pk).update(
        fetch_started_at=Now(), partial_blob_name="2026/12/being-written.ccrec"
    )
    # This worker's clock is ahead by more than the lease: by its own clock, the lease is over.
    monkeypatch.setattr(ingest, "timezone", Clock(ingest.FETCH_LEASE + timedelta(minutes=10)))

    ingest.fetch(recording.pk)

    recording.refresh_from_db()
    assert media_requests(twilio, recording) == 0
    assert recording.status == Status.COMPLETED
    assert recording.partial_blob_name == "2026/12/being-written.ccrec"
    assert recording.fetch_attempts == 0


def test_audit_times_come_from_the_database_not_the_host(call, monkeypatch):
    """A host whose clock is ten minutes slow writes an event after another host's: its time
    still follows the event before, and the trail verifies."""
    first = audit.record(AccessEvent.Action.PLAYBACK, actor_label="host-a")
    monkeypatch.setattr(audit, "timezone", Clock(-timedelta(minutes=10)))

    second = audit.record(AccessEvent.Action.PLAYBACK, actor_label="slow-host")

    stored = AccessEvent.objects.get(pk=second.pk)
    assert stored.occurred_at >= AccessEvent.objects.get(pk=first.pk).occurred_at
    assert abs(stored.occurred_at - timezone.now()) < timedelta(seconds=30)
    assert stored.occurred_at == second.occurred_at  # the hash was computed from it
    call_command("verify_audit")


def test_verify_audit_reports_an_event_earlier_than_the_one_before(call):
    """Rows written by a host with a slow clock (before times came from the database) link
    and hash correctly, but go back in time: the check names the first such event."""
    audit.record(AccessEvent.Action.PLAYBACK, actor_label="host-a")
    before = AccessEvent.objects.order_by("-seq").first()
    slow = {
        "seq": before.seq + 1,
        "occurred_at": before.occurred_at - timedelta(minutes=10),
        "actor_id": None,
        "actor_label": "slow-host",
        "action": AccessEvent.Action.PLAYBACK.value,
        "recording_id": None,
        "recording_sid": "",
        "purpose": "",
        "detail": {},
        "ip": None,
        "user_agent": "",
        "previous_hash": before.hash,
    }
    AccessEvent.objects.bulk_create([AccessEvent(**slow, hash=audit.event_hash(slow))])

    result = audit.verify_chain()

    assert not result.ok
    assert result.first_broken_seq == before.seq + 1
    assert f"earlier than event {before.seq}" in result.problem
    with pytest.raises(CommandError, match=f"event {before.seq + 1}: its time"):
        call_command("verify_audit")
