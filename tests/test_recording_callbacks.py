"""Twilio's recording status callbacks, and the outbox that hands each completed recording's
fetch to Celery once the transaction commits — also while Redis is down."""

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from recordings import ingest
from recordings.models import Recording

from .factories import consented_call
from .helpers.recordings import (
    CALLBACK,
    at_twilio,
    callback,
    completed,
    fetch_messages,
)

pytestmark = pytest.mark.django_db

Status = Recording.Status


@pytest.fixture
def call(notice, operator):
    return consented_call(operator)


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
        assert message.last_error.startswith("OperationalError: ")
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
