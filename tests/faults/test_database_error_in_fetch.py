"""A database error inside a fetch is retried like a network error (issue: a DB error
inside a fetch waited an hour for the requeue). PostgreSQL ends the fetching session while
the audio streams; the task retries and the recording is stored once."""

import threading

import pytest
from django.db import connection, connections

from recordings.models import Recording
from recordings.tasks import fetch_recording

from ..factories import consented_call, recording_notice
from ..helpers.recordings import media_requests, stored_files, twilio_copy, waiting
from ..helpers.services import require_service, wait_for
from ..helpers.staff import acknowledged_operator

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

Status = Recording.Status


@pytest.fixture
def call(live_db):
    recording_notice()
    return consented_call(acknowledged_operator("op"))


def test_a_database_error_inside_a_fetch_is_retried(twilio, call, retries_at_once):
    """GIVEN a fetch downloading WHEN its database connection is killed (PostgreSQL ends the
    session) THEN the task retries, and the recording is stored once."""
    if connection.vendor != "postgresql":
        require_service("PostgreSQL", "ending another session's connection needs DATABASE_URL")
    recording = waiting(twilio, call, trickle_seconds=1)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        [fetching_session] = cursor.fetchone()

    def end_the_session_mid_download():
        try:
            wait_for(lambda: media_requests(twilio, recording) >= 1, what="the download")
            with connections["default"].cursor() as cursor:
                cursor.execute("SELECT pg_terminate_backend(%s)", [fetching_session])
        finally:
            connections["default"].close()

    killer = threading.Thread(target=end_the_session_mid_download)
    killer.start()
    fetch_recording.delay(recording.pk)
    killer.join(timeout=30)

    recording.refresh_from_db()
    assert recording.status == Status.STORED
    assert recording.fetch_attempts == 2
    assert media_requests(twilio, recording) == 2
    assert [p.name for p in stored_files()] == [recording.blob_name.rsplit("/", 1)[-1]]
    assert twilio_copy(twilio, recording)["deleted"] is True
