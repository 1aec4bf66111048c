"""Operators acknowledge recording on their first page; staff record acknowledgements and
customers' withdrawals in the admin; the ledger is shown and never edited there."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from consent.models import ConsentRecord
from consent.services import has_opted_out, may_record, record_consent
from contactcenter.roles import OPERATOR

from .factories import (
    CallFactory,
    CustomerFactory,
    OperatorFactory,
    PurposeFactory,
    UserFactory,
    published_notice,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def new_operator():
    return OperatorFactory(user=UserFactory(username="newcomer", roles=[OPERATOR]))


class TestFirstLoginAcknowledgement:
    def test_an_operator_who_has_not_acknowledged_is_sent_to_the_page_first(
        self, client, new_operator
    ):
        client.force_login(new_operator.user)
        response = client.get(reverse("admin:contactcenter_call_changelist"))
        assert response.status_code == 302
        assert response.url.startswith(reverse("consent:acknowledge"))
        assert "next=%2Fadmin%2Fcontactcenter%2Fcall%2F" in response.url

    def test_the_page_explains_the_purposes_in_force(self, client, new_operator):
        published_notice(purposes=[PurposeFactory(name_ja="品質向上", retention_days=365)])
        client.force_login(new_operator.user)
        page = client.get(reverse("consent:acknowledge"))
        assert page.status_code == 200
        assert "通話は録音されます" in page.text
        assert "品質向上" in page.text

    def test_submitting_without_ticking_the_box_is_refused_and_records_nothing(
        self, client, new_operator
    ):
        client.force_login(new_operator.user)
        response = client.post(reverse("consent:acknowledge"), {"next": "/admin/"})
        assert response.status_code == 400
        assert "チェックを入れてください" in response.text
        assert not ConsentRecord.objects.exists()

    def test_agreeing_records_standing_consent_and_continues(self, client, new_operator):
        client.force_login(new_operator.user)
        next_url = reverse("admin:contactcenter_call_changelist")
        response = client.post(reverse("consent:acknowledge"), {"agree": "yes", "next": next_url})
        assert response.status_code == 302
        assert response.url == next_url
        record = ConsentRecord.objects.get()
        assert record.operator == new_operator
        assert record.call is None
        assert record.party_role == ConsentRecord.PartyRole.OPERATOR
        assert record.decision == ConsentRecord.Decision.GRANTED
        assert record.method == ConsentRecord.Method.WEB_FORM
        assert record.recorded_by == new_operator.user
        new_operator.refresh_from_db()
        assert new_operator.has_acknowledged_recording
        assert client.get(next_url).status_code == 200

    def test_an_outside_next_address_is_not_followed(self, client, new_operator):
        client.force_login(new_operator.user)
        response = client.post(
            reverse("consent:acknowledge"), {"agree": "yes", "next": "https://evil.example/"}
        )
        assert response.url == "/admin/"

    def test_staff_who_are_not_operators_are_not_asked(self, client, supervisor):
        client.force_login(supervisor)
        assert client.get(reverse("admin:index")).status_code == 200
        assert client.get(reverse("consent:acknowledge")).status_code == 404


def test_a_supervisor_records_operators_signed_acknowledgement(client, supervisor, new_operator):
    client.force_login(supervisor)
    response = client.post(
        reverse("admin:contactcenter_operator_changelist"),
        {"action": "record_acknowledgement", ACTION_CHECKBOX_NAME: [new_operator.pk]},
    )
    assert response.status_code == 302
    record = ConsentRecord.objects.get(operator=new_operator)
    assert record.method == ConsentRecord.Method.CONTRACT
    assert record.recorded_by == supervisor


class TestWithdrawalInTheAdmin:
    def test_the_action_asks_for_confirmation_and_a_note_first(self, client, supervisor):
        customer = CustomerFactory()
        client.force_login(supervisor)
        url = reverse("admin:contactcenter_customer_changelist")
        page = client.post(
            url, {"action": "record_withdrawal", ACTION_CHECKBOX_NAME: [customer.pk]}
        )
        assert page.status_code == 200
        assert "同意の撤回を記録" in page.text
        assert not ConsentRecord.objects.exists()

        without_note = client.post(
            url,
            {
                "action": "record_withdrawal",
                "confirm": "yes",
                ACTION_CHECKBOX_NAME: [customer.pk],
                "note": "",
            },
        )
        assert without_note.status_code == 200
        assert not ConsentRecord.objects.exists()

        done = client.post(
            url,
            {
                "action": "record_withdrawal",
                "confirm": "yes",
                ACTION_CHECKBOX_NAME: [customer.pk],
                "note": "11月24日に電話で申し出",
            },
        )
        assert done.status_code == 302
        record = ConsentRecord.objects.get()
        assert record.customer == customer
        assert record.decision == ConsentRecord.Decision.WITHDRAWN
        assert record.method == ConsentRecord.Method.STAFF_ENTRY
        assert record.note == "11月24日に電話で申し出"
        assert record.recorded_by == supervisor
        assert has_opted_out(customer)

    def test_after_withdrawal_a_granted_call_may_no_longer_be_recorded(
        self, client, supervisor, operator
    ):
        published_notice(purposes=[PurposeFactory()])
        call = CallFactory(operator=operator)
        record_consent(
            customer=call.customer,
            call=call,
            party_role="caller",
            decision="granted",
            method="ivr_keypress",
            digits="1",
        )
        assert may_record(call=call)
        client.force_login(supervisor)
        client.post(
            reverse("admin:contactcenter_customer_changelist"),
            {
                "action": "record_withdrawal",
                "confirm": "yes",
                "note": "窓口で受付",
                ACTION_CHECKBOX_NAME: [call.customer.pk],
            },
        )
        assert may_record(call=call).reason == "opted_out"
        page = client.get(reverse("admin:contactcenter_customer_change", args=[call.customer.pk]))
        assert "録音拒否" in page.text
        assert "撤回" in page.text

    def test_operators_cannot_record_withdrawals(self, client, operator):
        customer = CustomerFactory()
        client.force_login(operator.user)
        response = client.post(
            reverse("admin:contactcenter_customer_changelist"),
            {
                "action": "record_withdrawal",
                "confirm": "yes",
                "note": "x",
                ACTION_CHECKBOX_NAME: [customer.pk],
            },
        )
        assert response.status_code == 403
        assert not ConsentRecord.objects.filter(customer=customer).exists()


def test_the_call_page_says_whether_it_may_be_recorded_and_shows_the_ledger(
    client, supervisor, operator
):
    published_notice(purposes=[PurposeFactory(name_ja="品質向上")])
    call = CallFactory(operator=operator)
    record_consent(
        customer=call.customer,
        call=call,
        party_role="caller",
        decision="granted",
        method="ivr_keypress",
        digits="1",
    )
    client.force_login(supervisor)
    page = client.get(reverse("admin:contactcenter_call_change", args=[call.pk]))
    assert "可（v1 に基づく利用目的: 品質向上）" in page.text
    assert "録音案内後のボタン操作" in page.text


def test_the_ledger_cannot_be_edited_in_the_admin(client, supervisor):
    call = CallFactory()
    record = record_consent(
        customer=call.customer,
        call=call,
        party_role="caller",
        decision="granted",
        method="ivr_keypress",
        digits="1",
    )
    client.force_login(supervisor)
    change_url = reverse("admin:consent_consentrecord_change", args=[record.pk])
    assert client.get(change_url).status_code == 200
    assert client.post(change_url, {"decision": "refused"}).status_code == 403
    assert client.get(reverse("admin:consent_consentrecord_add")).status_code == 403
    delete_url = reverse("admin:consent_consentrecord_delete", args=[record.pk])
    assert client.post(delete_url, {"post": "yes"}).status_code == 403
    record.refresh_from_db()
    assert record.decision == "granted"
