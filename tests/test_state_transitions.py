"""Every state machine moves only as its table allows, through one conditional UPDATE that
says whether it applied: an illegal or stale move is refused and changes nothing.

The tables below are the specification; each machine's transition function is checked
against every pair of states. Then the writers that used to write unconditionally: refusal
at ingest, live recording controls racing the end of a call, and operators on a call.
"""

import itertools

import pytest
from django.conf import settings
from django.db import connections
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from consent.services import may_record
from contactcenter.models import Call, CallEvent, Operator
from portal.models import CustomerRequest
from recordings import ingest, retention
from recordings.models import Recording, Tombstone
from telephony import voice

from .factories import CallFactory, OperatorFactory, PurposeFactory, published_notice
from .factories import stored_recording as make_stored_recording
from .helpers.staff import acknowledged_operator
from .helpers.webhooks import twilio_post

pytestmark = pytest.mark.django_db

CallStatus = Call.Status
RecordingState = Call.RecordingState
Availability = Operator.Availability
RecordingStatus = Recording.Status
RequestStatus = CustomerRequest.Status
FINAL = {
    CallStatus.COMPLETED,
    CallStatus.BUSY,
    CallStatus.NO_ANSWER,
    CallStatus.CANCELED,
    CallStatus.FAILED,
}

# --- the tables --------------------------------------------------------------------------

CALL_STATUS_MOVES = {
    CallStatus.QUEUED: {
        CallStatus.QUEUED,
        CallStatus.INITIATED,
        CallStatus.RINGING,
        CallStatus.IN_PROGRESS,
        *FINAL,
    },
    CallStatus.INITIATED: {
        CallStatus.INITIATED,
        CallStatus.RINGING,
        CallStatus.IN_PROGRESS,
        *FINAL,
    },
    CallStatus.RINGING: {CallStatus.RINGING, CallStatus.IN_PROGRESS, *FINAL},
    CallStatus.IN_PROGRESS: {CallStatus.IN_PROGRESS, *FINAL},
    **{status: set() for status in FINAL},
}
RECORDING_STATE_MOVES = {
    RecordingState.NOT_RECORDED: {RecordingState.REQUESTED},
    RecordingState.REQUESTED: {
        RecordingState.RECORDING,
        RecordingState.PAUSED,
        RecordingState.STOPPED,
        RecordingState.NOT_RECORDED,
    },
    RecordingState.RECORDING: {
        RecordingState.PAUSED,
        RecordingState.STOPPED,
        RecordingState.NOT_RECORDED,
    },
    RecordingState.PAUSED: {RecordingState.RECORDING, RecordingState.STOPPED},
    RecordingState.STOPPED: set(),
}
AVAILABILITY_MOVES = {
    Availability.AVAILABLE: {Availability.ON_CALL, Availability.AWAY, Availability.OFFLINE},
    Availability.ON_CALL: {Availability.AVAILABLE, Availability.AWAY, Availability.OFFLINE},
    Availability.AWAY: {Availability.AVAILABLE, Availability.OFFLINE},
    Availability.OFFLINE: {Availability.AVAILABLE, Availability.AWAY},
}
RECORDING_STATUS_MOVES = {
    RecordingStatus.IN_PROGRESS: {
        RecordingStatus.COMPLETED,
        RecordingStatus.ABSENT,
        RecordingStatus.FAILED,
    },
    RecordingStatus.COMPLETED: {
        RecordingStatus.STORED,
        RecordingStatus.FETCH_FAILED,
        RecordingStatus.REFUSED,
    },
    RecordingStatus.FETCH_FAILED: {
        RecordingStatus.COMPLETED,
        RecordingStatus.STORED,
        RecordingStatus.REFUSED,
        RecordingStatus.PURGED,  # its retention passed or consent was withdrawn: Twilio's copy goes
    },
    RecordingStatus.STORED: {RecordingStatus.PURGED},
    RecordingStatus.ABSENT: set(),
    RecordingStatus.FAILED: set(),
    RecordingStatus.REFUSED: set(),
    RecordingStatus.PURGED: set(),
}
REQUEST_STATUS_MOVES = {
    # A request with a fee waits for the payment; it is then received, or refused or closed.
    RequestStatus.AWAITING_FEE: {
        RequestStatus.RECEIVED,
        RequestStatus.REFUSED,
        RequestStatus.CLOSED,
    },
    RequestStatus.RECEIVED: {
        RequestStatus.IN_REVIEW,
        RequestStatus.DONE,
        RequestStatus.REFUSED,
        RequestStatus.CLOSED,
    },
    RequestStatus.IN_REVIEW: {
        RequestStatus.RECEIVED,
        RequestStatus.DONE,
        RequestStatus.REFUSED,
        RequestStatus.CLOSED,
    },
    RequestStatus.DONE: set(),
    RequestStatus.REFUSED: set(),
    RequestStatus.CLOSED: set(),
}


def every_pair(moves):
    return [
        pytest.param(current, new, new in moves[current], id=f"{current}->{new}")
        for current, new in itertools.product(moves, repeat=2)
    ]


def test_the_tables_cover_every_state():
    assert set(CALL_STATUS_MOVES) == set(CallStatus.values)
    assert set(RECORDING_STATE_MOVES) == set(RecordingState.values)
    assert set(AVAILABILITY_MOVES) == set(Availability.values)
    assert set(RECORDING_STATUS_MOVES) == set(RecordingStatus.values)
    assert set(REQUEST_STATUS_MOVES) == set(RequestStatus.values)


class TestEachMachineKeepsItsTable:
    @pytest.mark.parametrize(("current", "new", "legal"), every_pair(CALL_STATUS_MOVES))
    def test_call_status(self, current, new, legal):
        call = CallFactory(status=current, last_sequence_number=1, duration=None)
        applied = Call.objects.apply_status(sid=call.sid, status=new, sequence_number=2)
        call.refresh_from_db()
        assert applied is legal
        assert call.status == (new if legal else current)
        assert call.last_sequence_number == (2 if legal else 1)

    @pytest.mark.parametrize(("current", "new", "legal"), every_pair(RECORDING_STATE_MOVES))
    def test_call_recording_state(self, current, new, legal):
        call = CallFactory(status=CallStatus.IN_PROGRESS, recording_state=current)
        applied = Call.objects.transition_recording_state(call.pk, to=new, language="en")
        call.refresh_from_db()
        assert applied is legal
        assert (call.recording_state, call.language) == ((new, "en") if legal else (current, "ja"))

    @pytest.mark.parametrize(("current", "new", "legal"), every_pair(AVAILABILITY_MOVES))
    def test_operator_availability(self, current, new, legal):
        operator = OperatorFactory(availability=current, display_name="before")
        applied = Operator.objects.transition(operator.pk, to=new, display_name="after")
        operator.refresh_from_db()
        assert applied is legal
        assert (operator.availability, operator.display_name) == (
            (new, "after") if legal else (current, "before")
        )

    @pytest.mark.parametrize(("current", "new", "legal"), every_pair(RECORDING_STATUS_MOVES))
    def test_recording_status(self, current, new, legal):
        recording = Recording.objects.create(
            sid="RE" + "1" * 32,
            call=CallFactory(),
            status=current,
            wrapped_key=b"wrapped",
            blob_name="2026/01/RE1.ccrec",
        )
        applied = Recording.objects.transition(recording.pk, to=new, last_error="moved")
        recording.refresh_from_db()
        assert applied is legal
        assert (recording.status, recording.last_error) == (
            (new, "moved") if legal else (current, "")
        )

    @pytest.mark.parametrize(("current", "new", "legal"), every_pair(REQUEST_STATUS_MOVES))
    def test_customer_request_status(self, current, new, legal):
        request = CustomerRequest.objects.create(
            phone_number="+81312345678", kind="hear", status=current, due_at=timezone.now()
        )
        applied = CustomerRequest.objects.transition(request.pk, to=new, staff_notes="moved")
        request.refresh_from_db()
        assert applied is legal
        assert (request.status, request.staff_notes) == ((new, "moved") if legal else (current, ""))

    def test_a_narrower_set_of_predecessors_is_honoured(self):
        """GIVEN a recording in progress WHEN it may move to completed only from fetch failed
        (the admin's retry) THEN it stays in progress."""
        recording = Recording.objects.create(sid="RE" + "2" * 32, call=CallFactory())
        assert not Recording.objects.transition(
            recording.pk, to=RecordingStatus.COMPLETED, only_from={RecordingStatus.FETCH_FAILED}
        )
        recording.refresh_from_db()
        assert recording.status == RecordingStatus.IN_PROGRESS

    def test_the_batch_form_moves_only_the_rows_that_may_move(self):
        call = CallFactory()
        stored, refused = (
            Recording.objects.create(
                sid="RE" + digit * 32,
                call=call,
                status=status,
                wrapped_key=b"wrapped",
                blob_name=f"{digit}.ccrec",
            )
            for digit, status in (("3", RecordingStatus.STORED), ("4", RecordingStatus.REFUSED))
        )
        moved = Recording.objects.filter(pk__in=[stored.pk, refused.pk]).transition_all(
            to=RecordingStatus.PURGED, key_id=""
        )
        assert moved == 1
        assert dict(Recording.objects.values_list("pk", "status")) == {
            stored.pk: RecordingStatus.PURGED,
            refused.pk: RecordingStatus.REFUSED,
        }

    def test_an_unknown_state_is_an_error(self):
        with pytest.raises(ValueError, match="unknown status"):
            Recording.objects.transition(1, to="lost")


# --- refusal at ingest ------------------------------------------------------------------


class TestRefusalAtIngest:
    @pytest.fixture
    def no_consent(self):
        """What the consent gate says of a call nobody consented to."""
        permission = may_record(call=CallFactory())
        assert not permission
        return permission

    def test_a_stored_recording_stays_stored(self, operator, twilio, no_consent):
        """GIVEN a recording stored meanwhile WHEN a late refusal at ingest arrives THEN it
        stays stored, keeps its key, and gets no tombstone."""
        recording = make_stored_recording(operator, audio=b"RIFF" + b"\0" * 400)
        ingest.refuse_at_ingest(recording, no_consent)
        recording.refresh_from_db()
        assert recording.status == RecordingStatus.STORED
        assert recording.wrapped_key is not None
        assert not Tombstone.objects.filter(recording=recording).exists()

    def test_a_purged_recording_stays_purged(self, operator, twilio, no_consent):
        recording = make_stored_recording(operator, audio=b"RIFF" + b"\0" * 400)
        assert retention.purge_due(recording_ids=[recording.pk]) == 1
        ingest.refuse_at_ingest(recording, no_consent)
        recording.refresh_from_db()
        assert recording.status == RecordingStatus.PURGED
        assert Tombstone.objects.get(recording=recording).reason == Tombstone.Reason.RETENTION

    def test_a_completed_recording_is_refused_with_a_tombstone(self, twilio, no_consent):
        recording = Recording.objects.create(
            sid="RE" + "5" * 32, call=CallFactory(), status=RecordingStatus.COMPLETED
        )
        ingest.refuse_at_ingest(recording, no_consent)
        recording.refresh_from_db()
        assert recording.status == RecordingStatus.REFUSED
        assert Tombstone.objects.get(recording=recording).reason == Tombstone.Reason.NO_CONSENT


# --- live recording controls racing the call ----------------------------------------------

STATUS = "/twilio/voice/status"
RECORDING_CALLBACK = "/twilio/recordings/status"


@pytest.mark.django_db(transaction=True)
class TestControlsRacingTheCall:
    """Twilio takes a moment to pause a recording; what happened to the call meanwhile wins."""

    @pytest.fixture
    def live_call(self, live_db, twilio):
        operator = acknowledged_operator("op-live")
        call = CallFactory(
            operator=operator,
            status=CallStatus.IN_PROGRESS,
            recording_state=RecordingState.RECORDING,
        )
        twilio.state.control("POST", "/_emulator/calls", {"sid": call.sid})
        _, recording = twilio.state.control(
            "POST", f"/_emulator/calls/{call.sid}/recordings", {"source": "DialVerb"}
        )
        call.twilio_recording = recording
        return call

    def while_twilio_is_asked(self, monkeypatch, twilio, callback):
        """Post ``callback()``'s signed webhook to the app while Twilio handles the control."""
        answer = twilio.state.update_recording

        def update_recording(**kwargs):
            try:
                path, params = callback()
                assert twilio_post(Client(), path, params).status_code == 200
            finally:
                connections.close_all()  # this thread's, before the test database goes
            return answer(**kwargs)

        monkeypatch.setattr(twilio.state, "update_recording", update_recording)

    def pause(self, client, call):
        client.force_login(call.operator.user)
        return client.post(
            reverse("api:call-recording", args=[call.sid]),
            {"action": "pause"},
            content_type="application/json",
        )

    def test_a_call_that_ended_meanwhile_keeps_its_recording_state(
        self, client, live_call, twilio, monkeypatch
    ):
        ended = {
            "AccountSid": settings.TWILIO_ACCOUNT_SID,
            "CallSid": live_call.sid,
            "CallStatus": "completed",
            "SequenceNumber": "7",
            "CallDuration": "40",
        }
        self.while_twilio_is_asked(monkeypatch, twilio, lambda: (STATUS, ended))
        response = self.pause(client, live_call)
        assert response.status_code == 409
        live_call.refresh_from_db()
        assert live_call.status == CallStatus.COMPLETED
        assert live_call.recording_state == RecordingState.RECORDING
        assert not live_call.events.filter(kind=CallEvent.Kind.RECORDING_PAUSED).exists()
        assert live_call.events.get().kind == CallEvent.Kind.RECORDING_CONTROL_FAILED

    def test_a_recording_that_turned_out_absent_is_not_marked_paused(
        self, client, live_call, twilio, monkeypatch
    ):
        resource = live_call.twilio_recording
        absent = {
            "AccountSid": settings.TWILIO_ACCOUNT_SID,
            "CallSid": live_call.sid,
            "RecordingSid": resource["sid"],
            "RecordingStatus": "absent",
            "RecordingSource": "DialVerb",
        }
        self.while_twilio_is_asked(monkeypatch, twilio, lambda: (RECORDING_CALLBACK, absent))
        response = self.pause(client, live_call)
        assert response.status_code == 409
        live_call.refresh_from_db()
        assert live_call.recording_state == RecordingState.NOT_RECORDED
        assert not live_call.events.filter(kind=CallEvent.Kind.RECORDING_PAUSED).exists()

    def test_without_a_race_the_pause_applies(self, client, live_call, twilio):
        assert self.pause(client, live_call).status_code == 200
        live_call.refresh_from_db()
        assert live_call.recording_state == RecordingState.PAUSED


# --- operators on a call -------------------------------------------------------------------


def dialled(driver_result):
    return [leg.text for leg in driver_result.dial]


@pytest.mark.django_db(transaction=True)
def test_an_operator_on_a_call_is_not_rung_until_it_ends(driver, live_db):
    """GIVEN two available operators WHEN the first answers a call THEN they are on a call and
    a second caller rings only the other; WHEN each call ends THEN its operator is available."""
    published_notice(purposes=[PurposeFactory(code="quality", name_ja="品質向上")])
    first, second = acknowledged_operator("op-1"), acknowledged_operator("op-2")

    one = driver.run(digits="1", hold=True)
    assert one.answered_by == first.routing_address
    first.refresh_from_db()
    assert first.availability == Availability.ON_CALL

    two = driver.run(digits="1", from_number="+81398765432", hold=True)
    assert dialled(two) == [second.routing_address]
    assert Operator.objects.get(pk=second.pk).availability == Availability.ON_CALL

    driver.hang_up(one)
    assert Operator.objects.get(pk=first.pk).availability == Availability.AVAILABLE
    assert Operator.objects.get(pk=second.pk).availability == Availability.ON_CALL
    driver.hang_up(two)
    assert Operator.objects.get(pk=second.pk).availability == Availability.AVAILABLE
    assert set(Call.objects.values_list("operator", flat=True)) == {first.pk, second.pk}


CUSTOMER_CALL = "CA" + "1" * 32
INCOMING = "/twilio/voice/incoming"


class TestOperatorAvailabilityFollowsTheirCall:
    @pytest.fixture
    def ringing(self, client):
        """A customer's call ringing one available operator."""
        operator = acknowledged_operator("op")
        self.incoming(client, CUSTOMER_CALL)
        return operator

    def incoming(self, client, sid, number="+81312345678"):
        params = {
            "CallSid": sid,
            "AccountSid": settings.TWILIO_ACCOUNT_SID,
            "From": number,
            "To": "+815012345678",
            "CallStatus": "ringing",
            "Direction": "inbound",
        }
        assert twilio_post(client, INCOMING, params).status_code == 200

    def leg(self, client, operator, status, *, parent=CUSTOMER_CALL):
        params = {
            "CallSid": "CA" + parent[2:][::-1],
            "ParentCallSid": parent,
            "CallStatus": status,
            "AccountSid": settings.TWILIO_ACCOUNT_SID,
        }
        twilio_post(client, STATUS, params, query=f"operator={operator.pk}")

    def customer_call_ends(self, client, *, sid=CUSTOMER_CALL, sequence=5):
        params = {
            "CallSid": sid,
            "CallStatus": "completed",
            "SequenceNumber": str(sequence),
            "CallDuration": "60",
            "AccountSid": settings.TWILIO_ACCOUNT_SID,
        }
        twilio_post(client, STATUS, params)

    def availability(self, operator):
        operator.refresh_from_db()
        return operator.availability

    def test_answering_puts_the_operator_on_the_call(self, client, ringing):
        self.leg(client, ringing, "in-progress")
        assert self.availability(ringing) == Availability.ON_CALL
        assert Call.objects.get(sid=CUSTOMER_CALL).operator == ringing

    @pytest.mark.parametrize("status", ["completed", "busy", "no-answer", "failed", "canceled"])
    def test_the_end_of_their_leg_makes_them_available(self, client, ringing, status):
        self.leg(client, ringing, "in-progress")
        assert self.availability(ringing) == Availability.ON_CALL
        self.leg(client, ringing, status)
        assert self.availability(ringing) == Availability.AVAILABLE

    def test_the_end_of_the_customers_call_makes_them_available(self, client, ringing):
        self.leg(client, ringing, "in-progress")
        assert self.availability(ringing) == Availability.ON_CALL
        self.customer_call_ends(client)
        assert self.availability(ringing) == Availability.AVAILABLE

    def test_an_operator_who_went_away_during_the_call_stays_away(self, client, ringing):
        self.leg(client, ringing, "in-progress")
        assert self.availability(ringing) == Availability.ON_CALL
        assert Operator.objects.transition(ringing.pk, to=Availability.AWAY)
        self.leg(client, ringing, "completed")
        self.customer_call_ends(client)
        assert self.availability(ringing) == Availability.AWAY

    def test_a_late_end_of_an_earlier_call_leaves_them_on_the_next(self, client, ringing):
        self.leg(client, ringing, "in-progress")
        self.leg(client, ringing, "completed")
        later = "CA" + "2" * 32
        self.incoming(client, later, number="+81399990000")
        self.leg(client, ringing, "in-progress", parent=later)
        assert self.availability(ringing) == Availability.ON_CALL
        self.customer_call_ends(client)  # the first call's own end, arriving late
        assert self.availability(ringing) == Availability.ON_CALL

    def test_a_leg_they_did_not_answer_leaves_them_on_their_call(self, client, ringing):
        self.leg(client, ringing, "in-progress")
        other = "CA" + "3" * 32
        self.incoming(client, other, number="+81399990001")
        self.leg(client, ringing, "canceled", parent=other)  # rang before they picked up
        assert self.availability(ringing) == Availability.ON_CALL

    def test_an_operator_on_a_call_is_not_rung_even_by_the_fallback(self, client, ringing):
        Operator.objects.transition(ringing.pk, to=Availability.ON_CALL)
        assert voice.available_operators() == []
        assert "<Number>" not in voice.fallback_twiml()

    def test_an_operator_available_again_is_rung(self, client, ringing):
        self.leg(client, ringing, "in-progress")
        self.customer_call_ends(client)
        assert voice.available_operators() == [ringing]
