"""The admin's actions: each declares who may use it (``@admin.action(permissions=…)``), so an
action a user may not use is not offered at all; and the actions that change what cannot be
changed back (hold, release, withdrawal, grant, refuse) share one confirmation step
(``ConfirmWithReasonMixin``) that shows what will change, asks for the reason, and changes
nothing until it is submitted with one."""

import re
from datetime import timedelta

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from consent.models import ConsentRecord
from portal.models import CustomerRequest
from recordings import retention
from recordings.models import LegalHold
from twilio_emulator.server import synthetic_wav

from . import factories

pytestmark = pytest.mark.django_db

AUDIO = synthetic_wav(1)
RECORDINGS = reverse("admin:recordings_recording_changelist")
QUEUE = reverse("admin:portal_customerrequest_changelist")
CUSTOMERS = reverse("admin:contactcenter_customer_changelist")


@pytest.fixture
def recording(notice, operator):
    return factories.stored_recording(operator, audio=AUDIO)


@pytest.fixture
def made(recording):
    made = CustomerRequest.objects.create(
        phone_number=recording.call.customer.phone_number,
        customer=recording.call.customer,
        kind="hear",
        due_at=timezone.now() + timedelta(days=7),
    )
    made.calls.set([recording.call])
    return made


def offered(client, url):
    page = client.get(url)
    assert page.status_code == 200
    chooser = re.search(r'<select name="action".*?</select>', page.content.decode(), re.S)
    return set(re.findall(r'<option value="(\w+)"', chooser.group(0))) if chooser else set()


def said(response):
    """The messages the admin showed after the action: ``(level, text)``."""
    return [(message.level_tag, str(message)) for message in response.context["messages"]]


# --- only the actions the user may use are offered ---------------------------------------------


def test_supervisors_are_offered_every_recordings_action(client, recording, supervisor):
    client.force_login(supervisor)

    assert offered(client, RECORDINGS) == {
        "retry_fetch",
        "place_hold",
        "release_holds",
        "mark_card_data",
        "mark_training_material",
        "unmark_training_material",
    }


def test_compliance_is_offered_only_the_legal_holds(client, recording, compliance_officer):
    client.force_login(compliance_officer)

    assert offered(client, RECORDINGS) == {"place_hold", "release_holds"}


def test_an_action_not_offered_cannot_be_posted(client, recording, compliance_officer):
    from recordings.models import Recording

    Recording.objects.filter(pk=recording.pk).update(status=Recording.Status.FETCH_FAILED)
    client.force_login(compliance_officer)

    response = client.post(
        RECORDINGS, {"action": "retry_fetch", ACTION_CHECKBOX_NAME: [recording.pk]}
    )

    assert response.status_code == 302  # "no action selected", back to the list
    recording.refresh_from_db()
    assert recording.status == Recording.Status.FETCH_FAILED


def test_who_may_only_read_the_queue_is_offered_no_decision(client, made):
    reader = factories.UserFactory(username="reader")
    reader.user_permissions.add(Permission.objects.get(codename="view_customerrequest"))
    client.force_login(reader)

    assert offered(client, QUEUE) == set()
    response = client.post(
        QUEUE, {"action": "approve", ACTION_CHECKBOX_NAME: [made.pk], "confirm": "yes"}
    )

    assert response.status_code == 200  # the list again: it has no action to run
    made.refresh_from_db()
    assert made.status == CustomerRequest.Status.RECEIVED


def test_staff_who_decide_are_offered_grant_and_refuse(client, made, compliance_officer):
    client.force_login(compliance_officer)

    assert offered(client, QUEUE) == {"approve", "confirm_fee", "refuse", "close"}


# --- confirm, then apply with a reason ---------------------------------------------------------


def test_a_refusal_is_confirmed_with_its_ground_and_reason_first(client, twilio, made, supervisor):
    client.force_login(supervisor)
    selection = {"action": "refuse", ACTION_CHECKBOX_NAME: [made.pk]}

    page = client.post(QUEUE, selection)
    assert page.status_code == 200
    text = page.content.decode()
    assert made.reference in text
    assert 'name="ground"' in text
    assert 'name="reason"' in text
    assert 'name="confirm"' in text

    without_reason = client.post(QUEUE, {**selection, "confirm": "yes", "ground": "identity"})
    assert without_reason.status_code == 200
    made.refresh_from_db()
    assert made.status == CustomerRequest.Status.RECEIVED
    assert twilio.state.messages == []

    done = client.post(
        QUEUE,
        {**selection, "confirm": "yes", "ground": "identity", "reason": "本人と確認できず"},
        follow=True,
    )
    assert done.redirect_chain[0][1] == 302
    made.refresh_from_db()
    assert made.status == CustomerRequest.Status.REFUSED
    assert made.decision_reason == "本人と確認できず"
    assert [level for level, _ in said(done)] == ["success"]


def test_a_closed_request_is_not_offered_for_a_decision(client, made, supervisor):
    CustomerRequest.objects.filter(pk=made.pk).update(status=CustomerRequest.Status.DONE)
    client.force_login(supervisor)
    selection = {"action": "refuse", ACTION_CHECKBOX_NAME: [made.pk]}

    page = client.post(QUEUE, selection).content.decode()
    done = client.post(
        QUEUE, {**selection, "confirm": "yes", "ground": "identity", "reason": "x"}, follow=True
    )

    assert made.reference not in page
    assert 'type="submit"' not in page.split('name="confirm"')[1]
    assert [level for level, _ in said(done)] == ["warning"]
    made.refresh_from_db()
    assert made.status == CustomerRequest.Status.DONE


def test_the_release_page_lists_only_what_is_held(client, notice, operator, supervisor):
    held, free = (factories.stored_recording(operator, audio=AUDIO) for _ in range(2))
    retention.place_hold(held, reason="係争中", by=supervisor)
    client.force_login(supervisor)

    page = client.post(
        RECORDINGS, {"action": "release_holds", ACTION_CHECKBOX_NAME: [held.pk, free.pk]}
    ).content.decode()

    assert f"{held.sid} ({held.call.sid})" in page
    assert free.sid not in page
    assert LegalHold.objects.active().count() == 1


def test_a_hold_is_placed_only_once_the_reason_is_given(client, recording, supervisor):
    client.force_login(supervisor)
    selection = {"action": "place_hold", ACTION_CHECKBOX_NAME: [recording.pk]}

    page = client.post(RECORDINGS, {**selection, "reason": "係争中"})
    assert page.status_code == 200  # no "confirm": still the confirmation page
    assert not LegalHold.objects.exists()

    done = client.post(RECORDINGS, {**selection, "confirm": "yes", "reason": "係争中"}, follow=True)

    assert LegalHold.objects.get().reason == "係争中"
    assert said(done) == [("success", f"1 件の録音を保全しました。 ({recording.sid})")]


def test_a_withdrawal_ends_with_what_was_done(client, recording, supervisor):
    customer = recording.call.customer
    client.force_login(supervisor)

    done = client.post(
        CUSTOMERS,
        {
            "action": "record_withdrawal",
            ACTION_CHECKBOX_NAME: [customer.pk],
            "confirm": "yes",
            "note": "窓口で受付",
        },
        follow=True,
    )

    assert ConsentRecord.objects.get(decision=ConsentRecord.Decision.WITHDRAWN).note == "窓口で受付"
    [(level, text)] = said(done)
    assert level == "success"
    assert text.startswith("1 人のお客様の同意の撤回を記録しました。")
