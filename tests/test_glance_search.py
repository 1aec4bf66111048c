"""Issue 15, item 3: a number typed as the admin shows it, or in any Japanese or E.164 format,
finds it on every list where numbers are searched; operator names and request numbers too."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from consent.models import ConsentRecord
from portal.models import CustomerRequest
from recordings.models import Recording

from . import factories

pytestmark = pytest.mark.django_db

NUMBER = "+819022223333"
FORMATS = ["090-2222-3333", "09022223333", "+819022223333", "+81 90-2222-3333"]
LISTS = {
    "calls": "admin:contactcenter_call_changelist",
    "customers": "admin:contactcenter_customer_changelist",
    "consent": "admin:consent_consentrecord_changelist",
    "requests": "admin:portal_customerrequest_changelist",
    "recordings": "admin:recordings_recording_changelist",
}


@pytest.fixture
def found(db, operator, notice):
    customer = factories.CustomerFactory(phone_number=NUMBER)
    call = factories.consented_call(operator, customer=customer, from_number=NUMBER)
    other = factories.consented_call(operator)
    for each in (call, other):
        Recording.objects.create(
            sid="RE" + each.sid[2:], call=each, status=Recording.Status.COMPLETED
        )
    made = CustomerRequest.objects.create(
        phone_number=NUMBER, customer=customer, kind="hear", due_at=timezone.now() + timedelta(7)
    )
    return {
        "calls": call.pk,
        "customers": customer.pk,
        "consent": ConsentRecord.objects.get(call=call).pk,
        "requests": made.pk,
        "recordings": Recording.objects.get(call=call).pk,
    }


def results(client, name, term):
    page = client.get(reverse(LISTS[name]), {"q": term})
    assert page.status_code == 200
    return {obj.pk for obj in page.context["cl"].result_list}


@pytest.mark.parametrize("name", LISTS)
@pytest.mark.parametrize("term", FORMATS)
def test_a_number_in_any_format_finds_it(client, supervisor, found, name, term):
    client.force_login(supervisor)
    assert results(client, name, term) == {found[name]}


@pytest.mark.parametrize("name", ["calls", "recordings"])
def test_an_operators_name_finds_their_calls(client, supervisor, operator, found, name):
    client.force_login(supervisor)
    named = results(client, name, operator.display_name)
    assert found[name] in named
    assert results(client, name, "nobody-by-this-name") == set()


def test_a_request_number_finds_the_request(client, supervisor, found):
    client.force_login(supervisor)
    reference = CustomerRequest.objects.get(pk=found["requests"]).reference
    assert results(client, "requests", reference) == {found["requests"]}
    assert results(client, "requests", reference.lower()) == {found["requests"]}


def test_an_operators_name_finds_their_acknowledgement_in_the_ledger(client, supervisor, operator):
    client.force_login(supervisor)
    theirs = set(ConsentRecord.objects.filter(operator=operator).values_list("pk", flat=True))
    assert theirs and results(client, "consent", operator.display_name) == theirs
