"""No slow I/O inside a transaction: a decision commits with its audit event, and only then
are files deleted, Twilio called and the customer told. Entry points that would hold a lock
across that I/O if they ran inside another transaction refuse to be nested.

These tests need real commits (other threads must see the rows, and a rollback must be a
real one), so they run on ``transactional_db``."""

import threading
import time
from datetime import timedelta

import pytest
from django.core.files.storage import storages
from django.db import DatabaseError, connection, connections, transaction
from django.urls import reverse
from django.utils import timezone

from audit.models import AccessEvent
from audit.services import verify_chain
from portal import requests
from portal.models import CustomerRequest
from recordings import ingest, retention
from recordings.models import Recording
from twilio_emulator.server import synthetic_wav

from .factories import CustomerFactory, consented_call, stored_recording

pytestmark = pytest.mark.django_db(transaction=True)

Action = AccessEvent.Action
NUMBER = "+819011112222"
AUDIO = synthetic_wav(0.2)
RECORDINGS = 50
# Twilio answers each DELETE this late: 50 of them keep a deletion busy for 5 seconds.
DELETE_SECONDS = 0.1


@pytest.fixture(autouse=True)
def _roles(live_db):
    """Committed data, with the role groups in place."""


def at_twilio(twilio, call, **faults):
    """Twilio recorded ``call``, and we stored its audio (Twilio's copy is still there)."""
    state = twilio.state
    state.control("POST", "/_emulator/calls", {"sid": call.sid})
    _, resource = state.control("POST", f"/_emulator/calls/{call.sid}/recordings", {})
    state.control("POST", f"/_emulator/recordings/{resource['sid']}/complete", faults)
    recording = Recording.objects.create(
        sid=resource["sid"], call=call, status=Recording.Status.COMPLETED, channels=2
    )
    return ingest.store_audio(recording, [AUDIO])


def deletion_request(recordings):
    made = CustomerRequest.objects.create(
        phone_number=NUMBER,
        customer=recordings[0].call.customer,
        kind=CustomerRequest.Kind.DELETE,
        due_at=timezone.now() + timedelta(days=7),
    )
    made.calls.set([recording.call for recording in recordings])
    return made


def deletes_received(twilio):
    with twilio.state.lock:
        return sum(request["method"] == "DELETE" for request in twilio.state.requests)


def deleted_at_twilio(twilio, recordings):
    with twilio.state.lock:
        return sum(twilio.state.recordings[r.sid]["deleted"] for r in recordings)


def wait_for(condition, *, timeout=30):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def in_thread(function):
    """Run ``function`` in a thread of its own (with its own connection); keep its errors."""
    errors = []

    def run():
        try:
            function()
        except Exception as error:  # reported by the test
            errors.append(error)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, errors


def test_a_playback_is_audited_while_a_deletion_waits_on_a_slow_twilio(
    client, twilio, notice, operator, supervisor
):
    """GIVEN a customer's granted deletion of 50 recordings, and a Twilio that takes 0.1 s
    to answer each DELETE, WHEN a supervisor starts a playback of another recording while
    those DELETEs are in flight THEN the playback's audit event is written at once: the
    deletion holds no transaction (and so not the audit chain's lock) while Twilio is
    called. Afterwards all 50 are purged here and deleted at Twilio, and the trail verifies.
    """
    customer = CustomerFactory(phone_number=NUMBER)
    calls = [consented_call(operator, customer=customer) for _ in range(RECORDINGS)]
    theirs = [at_twilio(twilio, call, delete_seconds=DELETE_SECONDS) for call in calls]
    other = stored_recording(operator, audio=AUDIO)
    made = deletion_request(theirs)
    client.force_login(supervisor)

    granting, errors = in_thread(lambda: requests.approve(made, by=supervisor))
    wait_for(lambda: deletes_received(twilio) > 0)
    response = client.post(reverse("recordings:play", args=[other.pk]), {"purpose": "quality"})
    deleted_meanwhile = deleted_at_twilio(twilio, theirs)
    still_deleting = granting.is_alive()
    granting.join(timeout=60)

    assert response.status_code == 200, response.content
    assert AccessEvent.objects.filter(action=Action.PLAYBACK, recording_id=other.pk).count() == 1
    assert still_deleting
    assert deleted_meanwhile < RECORDINGS
    assert errors == []
    assert not granting.is_alive()
    purged = Recording.objects.filter(pk__in=[r.pk for r in theirs], status=Recording.Status.PURGED)
    assert purged.count() == RECORDINGS
    assert deleted_at_twilio(twilio, theirs) == RECORDINGS
    assert CustomerRequest.objects.get(pk=made.pk).status == CustomerRequest.Status.DONE
    assert "削除" in twilio.state.messages[-1]["body"]
    assert verify_chain().ok


@pytest.fixture
def decisions_refused():
    """The database refuses to write any decision on a request (a failing disk, a lost
    connection, a constraint): the decision's transaction rolls back."""
    if connection.vendor == "postgresql":
        create = [
            "CREATE FUNCTION refuse_decisions() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'decisions refused'; END $$",
            "CREATE TRIGGER refuse_decisions BEFORE UPDATE ON portal_customerrequest "
            "FOR EACH ROW EXECUTE FUNCTION refuse_decisions()",
        ]
        drop = [
            "DROP TRIGGER IF EXISTS refuse_decisions ON portal_customerrequest",
            "DROP FUNCTION IF EXISTS refuse_decisions()",
        ]
    else:
        create = [
            "CREATE TRIGGER refuse_decisions BEFORE UPDATE ON portal_customerrequest "
            "BEGIN SELECT RAISE(ABORT, 'decisions refused'); END"
        ]
        drop = ["DROP TRIGGER IF EXISTS refuse_decisions"]
    with connection.cursor() as cursor:
        for statement in create:
            cursor.execute(statement)
    yield
    with connection.cursor() as cursor:
        for statement in drop:
            cursor.execute(statement)


def test_a_deletion_whose_decision_rolls_back_deletes_and_sends_nothing(
    twilio, notice, operator, supervisor, decisions_refused
):
    """GIVEN a granted deletion whose decision the database refuses to write THEN nothing
    happened outside the database either: the recording, its file and Twilio's copy are
    all still there, and the customer got no SMS."""
    customer = CustomerFactory(phone_number=NUMBER)
    recording = at_twilio(twilio, consented_call(operator, customer=customer))
    made = deletion_request([recording])

    with pytest.raises(DatabaseError):
        requests.approve(made, by=supervisor)

    recording.refresh_from_db()
    assert recording.status == Recording.Status.STORED
    assert storages["recordings"].exists(recording.blob_name)
    assert deletes_received(twilio) == 0
    assert not twilio.state.recordings[recording.sid]["deleted"]
    assert twilio.state.messages == []
    assert CustomerRequest.objects.get(pk=made.pk).status == CustomerRequest.Status.RECEIVED
    assert not AccessEvent.objects.filter(action__in=[Action.PURGE, Action.REQUEST_DECIDED])


@pytest.mark.parametrize(
    "entry_point",
    [
        pytest.param(lambda made, by, recording: requests.approve(made, by=by), id="grant"),
        pytest.param(
            lambda made, by, recording: requests.refuse(
                made, by=by, ground="identity", reason="本人と確認できず"
            ),
            id="refusal",
        ),
        pytest.param(
            lambda made, by, recording: retention.purge_due(recording_ids=[recording.pk]),
            id="purge",
        ),
        pytest.param(lambda made, by, recording: ingest.fetch(recording.pk), id="fetch"),
    ],
)
def test_entry_points_that_call_out_refuse_to_run_inside_another_transaction(
    twilio, notice, operator, supervisor, entry_point
):
    """A decision, a purge and a fetch each commit before they touch files, Twilio or SMS;
    run inside a caller's transaction they would hold its locks across that I/O, so they
    refuse at once, and nothing is written or sent."""
    customer = CustomerFactory(phone_number=NUMBER)
    recording = at_twilio(twilio, consented_call(operator, customer=customer))
    Recording.objects.filter(pk=recording.pk).update(retain_until=timezone.now())
    made = deletion_request([recording])

    with pytest.raises(RuntimeError, match="durable"), transaction.atomic():
        entry_point(made, supervisor, recording)

    assert Recording.objects.get(pk=recording.pk).status == Recording.Status.STORED
    assert CustomerRequest.objects.get(pk=made.pk).status == CustomerRequest.Status.RECEIVED
    assert deletes_received(twilio) == 0
    assert twilio.state.messages == []
