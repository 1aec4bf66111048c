"""A state edited on an admin change form moves through its state machine.

The form's other fields are saved on their own; a changed state is a transition, so an
illegal move is refused with a message, and a state that moved on while the form was open
(an operator put on a call by Twilio's callback) is never written back.
"""

from datetime import timedelta

from django.urls import reverse
from django.utils import timezone

from contactcenter.models import Operator
from portal.models import CustomerRequest

Availability = Operator.Availability
Status = CustomerRequest.Status


def change_form_data(response):
    """What the change form page would post back unchanged: its fields and inline formsets."""
    data = {}
    form = response.context["adminform"].form
    for name, field in form.fields.items():
        value = form.initial.get(name, field.initial)
        if value is not None:
            data[name] = value
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        for name, value in formset.management_form.initial.items():
            data[f"{formset.prefix}-{name}"] = value
        for inline_form in formset.forms:
            for name in inline_form.fields:
                value = inline_form.initial.get(name)
                if value is not None:
                    data[inline_form.add_prefix(name)] = getattr(value, "pk", value)
    return data


def open_change_form(client, name, obj):
    url = reverse(f"admin:{name}_change", args=[obj.pk])
    response = client.get(url)
    assert response.status_code == 200
    return url, change_form_data(response)


def open_operator_form(client, operator):
    """The operator's change form, with a routing address the form accepts."""
    Operator.objects.filter(pk=operator.pk).update(routing_address="+819011112222")
    return open_change_form(client, "contactcenter_operator", operator)


class TestOperatorAvailability:
    def test_a_supervisor_sets_an_operator_away(self, client, supervisor, operator):
        client.force_login(supervisor)
        url, data = open_operator_form(client, operator)

        response = client.post(url, {**data, "availability": Availability.AWAY})

        assert response.status_code == 302
        operator.refresh_from_db()
        assert operator.availability == Availability.AWAY

    def test_a_call_answered_while_the_form_was_open_is_not_overwritten(
        self, client, supervisor, operator
    ):
        client.force_login(supervisor)
        url, data = open_operator_form(client, operator)
        assert data["availability"] == Availability.AVAILABLE
        assert Operator.objects.transition(operator.pk, to=Availability.ON_CALL)

        response = client.post(url, {**data, "display_name": "佐藤 花子"})

        assert response.status_code == 302
        operator.refresh_from_db()
        assert operator.display_name == "佐藤 花子"
        assert operator.availability == Availability.ON_CALL

    def test_a_move_the_machine_forbids_is_refused_with_a_message(
        self, client, supervisor, operator
    ):
        assert Operator.objects.transition(operator.pk, to=Availability.AWAY)
        client.force_login(supervisor)
        url, data = open_operator_form(client, operator)

        response = client.post(url, {**data, "availability": Availability.ON_CALL}, follow=True)

        operator.refresh_from_db()
        assert operator.availability == Availability.AWAY
        messages = [str(message) for message in response.context["messages"]]
        assert "受付状態は変更されませんでした: 離席中 から 通話中 には変更できません。" in messages


class TestCustomerRequestStatus:
    def make_request(self):
        now = timezone.now()
        return CustomerRequest.objects.create(
            phone_number="+819022223333",
            kind=CustomerRequest.Kind.HEAR,
            due_at=now + timedelta(days=7),
        )

    def test_staff_move_an_open_request_into_review(self, client, supervisor):
        made = self.make_request()
        client.force_login(supervisor)
        url, data = open_change_form(client, "portal_customerrequest", made)

        response = client.post(url, {**data, "status": Status.IN_REVIEW})

        assert response.status_code == 302
        made.refresh_from_db()
        assert made.status == Status.IN_REVIEW

    def test_a_request_closed_while_the_form_was_open_stays_closed(self, client, supervisor):
        made = self.make_request()
        client.force_login(supervisor)
        url, data = open_change_form(client, "portal_customerrequest", made)
        assert CustomerRequest.objects.transition(made.pk, to=Status.REFUSED)

        client.post(url, {**data, "status": Status.IN_REVIEW, "staff_notes": "折り返し済み"})

        made.refresh_from_db()
        assert made.status == Status.REFUSED
        assert made.staff_notes == ""
