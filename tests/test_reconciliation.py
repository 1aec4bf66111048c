"""The reconciliation with Twilio: recordings and calls whose callbacks never reached us are
found in Twilio's lists (the local emulator, over HTTP) and brought in line — fetched or
deleted at Twilio, never left; calls closed from Twilio's state; every run in the admin."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

import twilio_client
from contactcenter.models import Call, Operator
from recordings import ingest
from recordings.models import OutboxMessage, ReconciliationRun, Recording, Tombstone
from recordings.tasks import reconcile_twilio

from .factories import CallFactory, consented_call
from .helpers.recordings import at_twilio, callback

pytestmark = pytest.mark.django_db(transaction=True)

Status = Recording.Status


@pytest.fixture
def center(live_db, notice, tasks_in_process):
    """A center with a published notice; fetches queued through the outbox run at once."""


@pytest.fixture
def operator_on_call(center):
    from .helpers.staff import acknowledged_operator

    operator = acknowledged_operator("op")
    Operator.objects.filter(pk=operator.pk).update(availability=Operator.Availability.ON_CALL)
    return operator


def run(**options):
    call_command("reconcile_twilio", **options)
    return ReconciliationRun.objects.order_by("-started_at", "-pk").first()


def requests_to(twilio, method, suffix):
    return [
        r for r in twilio.state.requests if r["method"] == method and r["path"].endswith(suffix)
    ]


def test_an_unknown_recording_of_a_consented_call_is_created_and_fetched(
    twilio, center, operator_on_call
):
    call = consented_call(operator_on_call)
    resource = at_twilio(twilio, call)  # its callbacks never reached us

    result = run()

    recording = Recording.objects.get(sid=resource["sid"])
    assert recording.call == call
    assert recording.status == Status.STORED
    assert recording.twilio_deleted_at is not None
    assert twilio.state.recordings[resource["sid"]]["deleted"] is True
    assert result.status == ReconciliationRun.Status.SUCCEEDED
    assert (result.recordings_seen, result.created, result.queued) == (1, 1, 1)
    assert result.deleted_at_twilio == 0  # deleted by its fetch, once stored


def test_an_unknown_recording_without_consent_is_deleted_at_twilio_and_never_fetched(
    twilio, center, operator_on_call
):
    call = CallFactory(operator=operator_on_call)  # nobody pressed 1
    resource = at_twilio(twilio, call)

    result = run()

    recording = Recording.objects.get(sid=resource["sid"])
    assert recording.status == Status.REFUSED
    assert recording.tombstone.reason == Tombstone.Reason.NO_CONSENT
    assert twilio.state.recordings[resource["sid"]]["deleted"] is True
    assert requests_to(twilio, "GET", f"{resource['sid']}.wav") == []
    assert (result.created, result.queued, result.deleted_at_twilio) == (1, 0, 1)


def test_a_recording_of_a_call_we_never_saw_registers_the_call_from_twilio(twilio, center):
    """The call's webhooks never reached us (the database was down): no consent was given."""
    _, call = twilio.state.control(
        "POST", "/_emulator/calls", {"from": "+819011112222", "to": "+815012345678"}
    )
    _, started = twilio.state.control("POST", f"/_emulator/calls/{call['sid']}/recordings", {})
    twilio.state.control("POST", f"/_emulator/recordings/{started['sid']}/complete", {})
    twilio.state.control("POST", f"/_emulator/calls/{call['sid']}/hangup", {"duration": 31})

    result = run()

    ours = Call.objects.get(sid=call["sid"])
    assert ours.from_number == "+819011112222"
    assert ours.customer.phone_number == "+819011112222"
    assert ours.status == Call.Status.COMPLETED
    assert ours.duration == 31
    assert Recording.objects.get(sid=started["sid"]).status == Status.REFUSED
    assert twilio.state.recordings[started["sid"]]["deleted"] is True
    assert result.calls_closed == 1


def test_a_stored_recording_still_at_twilio_is_deleted_there(client, twilio, center):
    from .helpers.staff import acknowledged_operator

    call = consented_call(acknowledged_operator("op"))
    resource = at_twilio(twilio, call, delete_fail_times=1000)
    assert callback(client, call, resource).status_code == 200  # fetched; Twilio's DELETE failed
    recording = Recording.objects.get(sid=resource["sid"])
    assert recording.status == Status.STORED
    assert twilio.state.recordings[resource["sid"]]["deleted"] is False
    twilio.state.recordings[resource["sid"]]["faults"]["delete_fail_times"] = 0  # Twilio is back

    result = run()

    recording.refresh_from_db()
    assert twilio.state.recordings[resource["sid"]]["deleted"] is True
    assert recording.twilio_deleted_at is not None
    assert recording.status == Status.STORED
    assert (result.created, result.queued, result.deleted_at_twilio) == (0, 0, 1)


def test_a_recording_whose_completed_callback_was_lost_is_fetched(
    client, twilio, center, operator_on_call
):
    call = consented_call(operator_on_call, recording_state=Call.RecordingState.REQUESTED)
    resource = at_twilio(twilio, call)
    assert callback(client, call, resource, status="in-progress").status_code == 200

    result = run()

    assert Recording.objects.get(sid=resource["sid"]).status == Status.STORED
    assert twilio.state.recordings[resource["sid"]]["deleted"] is True
    call.refresh_from_db()
    assert call.recording_state == Call.RecordingState.RECORDING
    assert (result.created, result.queued) == (0, 1)


def test_a_completed_recording_whose_fetch_task_was_lost_is_queued_again(
    twilio, center, operator_on_call
):
    call = consented_call(operator_on_call)
    resource = at_twilio(twilio, call)
    # Told completed an hour ago; its fetch was published to a Redis that then lost it.
    recording = Recording.objects.create(sid=resource["sid"], call=call, status=Status.COMPLETED)
    OutboxMessage.objects.create(
        task=ingest.FETCH_TASK,
        kwargs={"recording_id": recording.pk},
        published_at=timezone.now() - timedelta(hours=1),
    )

    result = run()

    assert Recording.objects.get(sid=resource["sid"]).status == Status.STORED
    assert (result.created, result.queued) == (0, 1)


def test_a_call_stuck_in_progress_is_closed_with_twilios_end_and_duration(
    twilio, center, operator_on_call
):
    call = CallFactory(
        operator=operator_on_call, status=Call.Status.IN_PROGRESS, duration=None, ended_at=None
    )
    twilio.state.control("POST", "/_emulator/calls", {"sid": call.sid})
    twilio.state.control("POST", f"/_emulator/calls/{call.sid}/hangup", {"duration": 47})
    ended = twilio_client.fetch_call(call.sid)["end_time"]

    result = run()

    call.refresh_from_db()
    assert call.status == Call.Status.COMPLETED
    assert call.duration == 47
    assert call.ended_at == ended
    assert call.answered_at is not None
    operator_on_call.refresh_from_db()
    assert operator_on_call.availability == Operator.Availability.AVAILABLE
    assert (result.calls_seen, result.calls_closed) == (1, 1)


def test_a_call_twilio_still_has_in_progress_is_left_open(twilio, center, operator_on_call):
    call = CallFactory(operator=operator_on_call, status=Call.Status.IN_PROGRESS, duration=None)
    twilio.state.control("POST", "/_emulator/calls", {"sid": call.sid})

    assert run().calls_closed == 0

    call.refresh_from_db()
    assert call.status == Call.Status.IN_PROGRESS
    assert call.ended_at is None


def test_running_twice_changes_nothing_more(twilio, center, operator_on_call):
    consented = at_twilio(twilio, consented_call(operator_on_call))
    refused = at_twilio(twilio, CallFactory(operator=operator_on_call))
    stuck = CallFactory(operator=operator_on_call, status=Call.Status.RINGING, duration=None)
    twilio.state.control("POST", "/_emulator/calls", {"sid": stuck.sid})
    twilio.state.control("POST", f"/_emulator/calls/{stuck.sid}/hangup", {"duration": 9})
    first = run()
    rows = {r.sid: (r.status, r.twilio_deleted_at) for r in Recording.objects.all()}
    calls = {c.sid: (c.status, c.ended_at, c.duration) for c in Call.objects.all()}
    requests = len(twilio.state.requests)

    second = run()

    assert (first.created, first.deleted_at_twilio, first.calls_closed) == (2, 1, 1)
    assert (second.created, second.queued, second.deleted_at_twilio, second.calls_closed) == (
        0,
        0,
        0,
        0,
    )
    assert {r.sid: (r.status, r.twilio_deleted_at) for r in Recording.objects.all()} == rows
    assert {c.sid: (c.status, c.ended_at, c.duration) for c in Call.objects.all()} == calls
    assert {r["method"] for r in twilio.state.requests[requests:]} == {"GET"}  # lists only
    assert rows[consented["sid"]][0] == Status.STORED
    assert rows[refused["sid"]][0] == Status.REFUSED


def test_with_twilio_down_the_run_is_recorded_failed_and_nothing_changes(
    twilio, center, operator_on_call, settings
):
    at_twilio(twilio, consented_call(operator_on_call))
    stuck = CallFactory(operator=operator_on_call, status=Call.Status.IN_PROGRESS, duration=None)
    settings.TWILIO_API_BASE_URL = "http://127.0.0.1:1"  # nothing listens there

    run_id = reconcile_twilio()  # as beat runs it: no exception escapes
    with pytest.raises(CommandError, match="Reconciliation failed"):
        call_command("reconcile_twilio")

    failed = ReconciliationRun.objects.get(pk=run_id)
    assert failed.status == ReconciliationRun.Status.FAILED
    assert "Twilio" in failed.error_text  # the reason, in the language of the run
    assert failed.finished_at is not None
    assert Recording.objects.count() == 0
    stuck.refresh_from_db()
    assert stuck.status == Call.Status.IN_PROGRESS


def test_since_limits_what_is_listed(twilio, center, operator_on_call):
    recent = at_twilio(twilio, consented_call(operator_on_call))
    old = at_twilio(twilio, consented_call(operator_on_call))
    twilio.state.recordings[old["sid"]]["created"] = datetime.now(UTC) - timedelta(days=3)

    result = run(since="1d")

    assert Recording.objects.filter(sid=recent["sid"]).exists()
    assert not Recording.objects.filter(sid=old["sid"]).exists()
    assert result.recordings_seen == 1
    [listing] = requests_to(twilio, "GET", "/Recordings.json")
    listed_since = datetime.fromisoformat(listing["query"]["DateCreated>"])
    assert timedelta(hours=23) < datetime.now(UTC) - listed_since < timedelta(hours=25)

    run(since="5d")  # a wider window finds the old one too
    assert Recording.objects.get(sid=old["sid"]).status == Status.STORED


def test_twilios_lists_are_read_page_by_page(twilio, center, operator_on_call, settings):
    sids = {at_twilio(twilio, consented_call(operator_on_call))["sid"] for _ in range(5)}

    listed = twilio_client.client().recordings.list(page_size=2)

    assert {recording.sid for recording in listed} == sids
    pages = requests_to(twilio, "GET", "/Recordings.json")
    assert len(pages) == 3
    assert pages[-1]["query"]["PageToken"].startswith("PA")


def test_the_admin_lists_runs_newest_first_and_read_only(admin_client, twilio, center):
    first = run()
    second = run()

    response = admin_client.get(reverse("admin:recordings_reconciliationrun_changelist"))

    assert response.status_code == 200
    listed = list(response.context["cl"].result_list)
    assert listed == [second, first]
    add = admin_client.get(reverse("admin:recordings_reconciliationrun_add"))
    assert add.status_code == 403
