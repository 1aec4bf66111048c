"""Issue 16 (deliver 6): the guard against recycled numbers. Proving a number shows none of its
calls; the caller finds a call by its day and time (within 90 minutes), ten times per proof;
a call older than 90 days may be an earlier holder's: shown as "to be confirmed", and the
request for it is marked for staff to confirm. Requests of the number's earlier holder are not
listed either."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from contactcenter.models import Call
from portal import ownership
from portal.models import CustomerRequest

from .factories import CallFactory, CustomerFactory
from .helpers.portal import find_call, prove, when
from .test_playback import stored_recording

pytestmark = pytest.mark.django_db

NUMBER = "+819044445555"
MINE = reverse("portal:mine")


@pytest.fixture(autouse=True)
def _fresh_limits(portal_codes):
    """Codes through the Twilio emulator, and the portal's limits fresh (conftest)."""


def shown(client, call):
    page = client.get(MINE).content.decode()
    return timezone.localtime(call.started_at).strftime("%Y-%m-%d %H:%M") in page


@pytest.fixture
def holder():
    return CustomerFactory(phone_number=NUMBER)


def test_a_previous_holders_call_is_not_listed_to_the_new_holder(client, twilio, holder):
    earlier = CallFactory(customer=holder, started_at=timezone.now() - timedelta(days=400))
    recent = CallFactory(customer=holder, started_at=timezone.now() - timedelta(days=3))
    prove(client, twilio, NUMBER)

    assert not shown(client, earlier)
    assert not shown(client, recent)
    find_call(client, recent)
    assert shown(client, recent)
    assert not shown(client, earlier)  # never listed unless its own day and time are given


def test_only_calls_within_the_window_of_the_given_time_are_found(client, twilio, holder):
    call = CallFactory(customer=holder, started_at=timezone.now() - timedelta(days=2))
    prove(client, twilio, NUMBER)
    local = timezone.localtime(call.started_at)
    for offset, found in ((timedelta(minutes=-100), False), (timedelta(minutes=80), True)):
        at = local + offset
        client.post(MINE, {"find": "1", "day": at.date().isoformat(), "time": f"{at:%H:%M}"})
        assert shown(client, call) is found


def test_an_old_call_is_shown_to_be_confirmed_and_its_request_says_so(client, twilio, holder):
    old = CallFactory(customer=holder, started_at=timezone.now() - timedelta(days=120))
    prove(client, twilio, NUMBER)
    find_call(client, old)
    page = client.get(MINE).content.decode()
    assert "担当者が確認します" in page
    assert "90日より前の通話は" in page
    assert ownership.needs_holder_check(old)
    assert not ownership.needs_holder_check(CallFactory(customer=holder))


def test_look_ups_are_limited_per_proof_of_the_number(client, twilio, holder, settings):
    call = CallFactory(customer=holder, started_at=timezone.now() - timedelta(days=1))
    prove(client, twilio, NUMBER)
    yesterday = (timezone.localdate() - timedelta(days=5)).isoformat()
    for _ in range(settings.PORTAL_CALL_LOOKUPS):
        client.post(MINE, {"find": "1", "day": yesterday, "time": "03:00"})
    day, at = when(call)
    page = client.post(MINE, {"find": "1", "day": day, "time": at}).content.decode()
    assert "通話を探す回数の上限に達しました" in page
    assert not shown(client, call)


def test_the_calls_found_belong_to_this_proof_of_this_number(client, twilio, holder):
    call = CallFactory(customer=holder, started_at=timezone.now() - timedelta(days=1))
    prove(client, twilio, NUMBER)
    find_call(client, call)
    other = "+819066667777"
    prove(client, twilio, other)
    assert not shown(client, call)


def test_a_request_cannot_name_a_call_that_was_not_found(client, twilio, holder, notice):
    call = CallFactory(customer=holder)
    prove(client, twilio, NUMBER)
    answer = client.post(MINE, {"kind": "delete", "calls": [str(call.pk)]})
    assert answer.status_code == 400
    assert not CustomerRequest.objects.exists()


def test_a_day_to_come_is_refused_and_changes_nothing(client, twilio, holder):
    prove(client, twilio, NUMBER)
    tomorrow = (timezone.localdate() + timedelta(days=1)).isoformat()
    page = client.post(MINE, {"find": "1", "day": tomorrow, "time": "10:00"})
    assert page.status_code == 400
    assert "まだ来ていない日付です。" in page.content.decode()
    assert ownership.lookups_left(client.session, NUMBER) == 10


def test_requests_of_the_earlier_holder_are_not_listed(client, twilio, holder):
    theirs = CustomerRequest.objects.create(
        phone_number=NUMBER, kind="hear", due_at=timezone.now() + timedelta(days=7)
    )
    CustomerRequest.objects.filter(pk=theirs.pk).update(
        created_at=timezone.now() - timedelta(days=200)
    )
    prove(client, twilio, NUMBER)
    assert theirs.reference not in client.get(MINE).content.decode()


def test_the_queue_marks_a_request_about_an_old_call(client, twilio, notice, operator, supervisor):
    recording = stored_recording(operator)
    call = recording.call
    call.customer.phone_number = NUMBER
    call.customer.save()
    Call.objects.filter(pk=call.pk).update(started_at=timezone.now() - timedelta(days=120))
    call.refresh_from_db()
    prove(client, twilio, NUMBER)
    find_call(client, call)
    assert client.post(MINE, {"kind": "hear", "calls": [str(call.pk)]}).status_code == 302
    made = CustomerRequest.objects.get()
    assert ownership.request_needs_holder_check(made)

    client.force_login(supervisor)
    page = client.get(reverse("admin:portal_customerrequest_change", args=[made.pk]))
    assert "番号の前の利用者の可能性" in page.content.decode()
