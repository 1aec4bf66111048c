"""Who may do what is a rule of the service that does it: called directly by a user whose
role does not allow it, a service raises ``NotAllowed`` and changes nothing. "This user's own
call" is one predicate, ``Call.is_handled_by`` (``CallQuerySet.handled_by`` for querysets)."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import AnonymousUser
from django.utils import timezone

from audit.models import AccessEvent
from consent.models import ConsentRecord
from contactcenter.models import Call
from contactcenter.roles import NotAllowed
from contactcenter.services import can_control_recording, live_calls_for
from portal import requests
from portal.models import CustomerRequest
from privacy.models import Notice
from privacy.services import publish_notice
from recordings import ingest, retention
from recordings.models import LegalHold, OutboxMessage, Recording
from training import services as training
from training.models import Feedback, TrainingReview
from twilio_emulator.server import synthetic_wav

from . import factories

pytestmark = pytest.mark.django_db

AUDIO = synthetic_wav(1)


@pytest.fixture
def recording(notice, operator):
    return factories.stored_recording(operator, audio=AUDIO)


def refused(call):
    with pytest.raises(NotAllowed) as refusal:
        call()
    assert refusal.value.status == 403
    assert str(refusal.value.message)
    return refusal.value


# --- services refuse ---------------------------------------------------------------------------


def test_an_operator_cannot_place_a_legal_hold(recording, operator):
    refused(lambda: retention.place_hold(recording, reason="係争中", by=operator.user))

    assert not LegalHold.objects.exists()
    assert not AccessEvent.objects.filter(action=AccessEvent.Action.HOLD_PLACED).exists()


def test_an_operator_cannot_release_a_legal_hold(recording, operator, supervisor):
    hold = retention.place_hold(recording, reason="係争中", by=supervisor)

    refused(lambda: retention.release_hold(hold, reason="終結", by=operator.user))

    hold.refresh_from_db()
    assert hold.released_at is None


def test_only_who_may_change_recordings_fetch_again(recording, compliance_officer, supervisor):
    Recording.objects.filter(pk=recording.pk).update(status=Recording.Status.FETCH_FAILED)
    queued_before = OutboxMessage.objects.count()

    refused(lambda: ingest.retry_fetch(recording, by=compliance_officer))

    recording.refresh_from_db()
    assert recording.status == Recording.Status.FETCH_FAILED
    assert OutboxMessage.objects.count() == queued_before


def test_an_operator_cannot_record_a_customers_withdrawal(recording, operator):
    customer = recording.call.customer

    refused(lambda: retention.withdraw_consent(customer=customer, by=operator.user, note="x"))

    assert not ConsentRecord.objects.filter(
        customer=customer, decision=ConsentRecord.Decision.WITHDRAWN
    ).exists()


@pytest.mark.parametrize("decide", ["approve", "refuse"])
def test_an_operator_cannot_decide_a_customers_request(recording, operator, decide):
    made = CustomerRequest.objects.create(
        phone_number=recording.call.customer.phone_number,
        kind="hear",
        due_at=timezone.now() + timedelta(days=7),
    )
    made.calls.set([recording.call])
    if decide == "approve":
        refused(lambda: requests.approve(made, by=operator.user))
    else:
        refused(
            lambda: requests.refuse(made, by=operator.user, ground="identity", reason="本人でない")
        )

    made.refresh_from_db()
    assert made.status == CustomerRequest.Status.RECEIVED
    assert not made.links.exists()


def test_an_operator_cannot_choose_training_material(recording, operator):
    refused(lambda: training.mark_training_material(recording, by=operator.user))

    recording.refresh_from_db()
    assert recording.training_material_at is None


def test_an_operator_cannot_give_feedback(recording, operator):
    review = TrainingReview.objects.create(recording=recording, operator=operator)

    refused(lambda: training.give_feedback(review=review, by=operator.user, comment="x", scores=[]))

    assert not Feedback.objects.exists()


def test_an_operator_cannot_review_another_operators_call(recording, other_operator):
    refused(
        lambda: training.save_review(
            recording=recording,
            operator=other_operator,
            notes="",
            self_evaluation="",
            self_rating=3,
        )
    )

    assert not TrainingReview.objects.exists()


def test_only_who_may_publish_publishes_a_notice(operator):
    draft = factories.NoticeFactory(purposes=[factories.PurposeFactory()])

    refused(lambda: publish_notice(notice=draft, by=operator.user))

    draft.refresh_from_db()
    assert draft.status == Notice.Status.DRAFT


# --- one predicate for "this user's own call" --------------------------------------------------


def test_a_call_is_its_operators_own_call_and_no_one_elses(operator, other_operator, supervisor):
    own = factories.CallFactory(operator=operator)
    unanswered = factories.CallFactory(operator=None)

    assert own.is_handled_by(operator.user)
    assert not own.is_handled_by(other_operator.user)
    assert not own.is_handled_by(supervisor)
    assert not own.is_handled_by(AnonymousUser())
    assert not unanswered.is_handled_by(AnonymousUser())
    assert list(Call.objects.handled_by(operator.user)) == [own]
    assert list(Call.objects.handled_by(other_operator.user)) == []
    assert list(Call.objects.handled_by(AnonymousUser())) == []


def test_live_recording_control_follows_the_same_predicate(operator, other_operator, supervisor):
    live = factories.CallFactory(operator=operator, status=Call.Status.IN_PROGRESS)

    assert can_control_recording(operator.user, live)
    assert not can_control_recording(other_operator.user, live)
    assert can_control_recording(supervisor, live)
    assert list(live_calls_for(operator.user)) == [live]
    assert list(live_calls_for(other_operator.user)) == []
