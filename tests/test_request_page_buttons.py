"""Issue 15 item 5 (part): a request's own admin page has 承認して対応 / 拒否 buttons leading to
the same confirm-with-reason pages as the list's actions, and a refusal's ground has no
default: it must be chosen."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from portal.models import CustomerRequest

pytestmark = pytest.mark.django_db

QUEUE = reverse("admin:portal_customerrequest_changelist")


@pytest.fixture
def made():
    return CustomerRequest.objects.create(
        phone_number="+819011112222",
        kind=CustomerRequest.Kind.WITHDRAW,
        due_at=timezone.now() + timedelta(days=7),
    )


def button_post(page, action, pk):
    """The hidden fields of the change page's form for ``action``."""
    form = page.split(f'name="action" value="{action}"', 1)
    assert len(form) == 2, f"no {action} button"
    assert f'name="_selected_action" value="{pk}"' in form[1].split("</form>", 1)[0]
    return {"action": action, "_selected_action": [pk], "index": "0"}


def test_the_change_page_offers_grant_and_refuse_for_this_request(client, supervisor, made):
    client.force_login(supervisor)
    page = client.get(reverse("admin:portal_customerrequest_change", args=[made.pk]))
    text = page.content.decode()

    for action in ("approve", "refuse"):
        confirm = client.post(QUEUE, button_post(text, action, made.pk))
        assert confirm.status_code == 200
        body = confirm.content.decode()
        assert made.reference in body and 'name="confirm"' in body
    made.refresh_from_db()
    assert made.status == CustomerRequest.Status.RECEIVED  # nothing changed yet


def test_a_closed_request_has_no_buttons(client, supervisor, made):
    CustomerRequest.objects.filter(pk=made.pk).update(status=CustomerRequest.Status.DONE)
    client.force_login(supervisor)

    text = client.get(reverse("admin:portal_customerrequest_change", args=[made.pk])).content

    assert b'name="action" value="approve"' not in text


def test_a_refusal_needs_a_chosen_ground(client, twilio, supervisor, made):
    client.force_login(supervisor)
    confirm = client.post(QUEUE, {"action": "refuse", "_selected_action": [made.pk], "index": "0"})
    body = confirm.content.decode()
    assert '<option value="" selected>' in body  # the empty first choice is the default

    without = client.post(
        QUEUE,
        {"action": "refuse", "_selected_action": [made.pk], "confirm": "yes", "reason": "x"},
    )

    assert without.status_code == 200  # the form again, with its error
    made.refresh_from_db()
    assert made.status == CustomerRequest.Status.RECEIVED
