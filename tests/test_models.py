"""Rules the core models keep about operators, customers and calls."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from contactcenter.db import insert_unless_exists
from contactcenter.models import Call, Customer, Operator
from contactcenter.phones import CallerIdStatus

from .factories import CallFactory, OperatorFactory

pytestmark = pytest.mark.django_db


class TestCustomerForCaller:
    def test_a_presented_number_finds_the_same_customer_every_time(self):
        first = Customer.objects.for_caller("+81312345678")
        again = Customer.objects.for_caller("+81312345678")
        assert first.pk == again.pk
        assert first.phone_number == "+81312345678"
        assert Customer.objects.count() == 1

    def test_each_withheld_call_gets_a_customer_of_its_own(self):
        one = Customer.objects.for_caller("anonymous")
        two = Customer.objects.for_caller("+266696687")
        assert one.pk != two.pk
        assert one.phone_number is None
        assert one.caller_id_status == CallerIdStatus.WITHHELD
        assert str(one) == f"非通知の発信者 #{one.pk}"

    def test_a_sip_caller_is_an_anonymous_customer_marked_unavailable(self):
        customer = Customer.objects.for_caller("sip:someone@example.com")
        assert customer.caller_id_status == CallerIdStatus.UNAVAILABLE
        assert customer.phone_number is None


class TestCustomerRules:
    def test_clean_normalises_the_number(self):
        customer = Customer(phone_number="03-1234-5678")
        customer.full_clean()
        assert customer.phone_number == "+81312345678"
        assert customer.formatted_phone_number == "03-1234-5678"

    def test_clean_refuses_an_invalid_number_naming_the_field(self):
        customer = Customer(phone_number="12345")
        with pytest.raises(ValidationError) as error:
            customer.full_clean()
        assert "phone_number" in error.value.message_dict

    def test_the_database_refuses_a_withheld_customer_with_a_number(self):
        with pytest.raises(IntegrityError), transaction.atomic():
            Customer.objects.create(
                phone_number="+81312345678", caller_id_status=CallerIdStatus.WITHHELD
            )

    def test_the_database_refuses_two_customers_with_one_number(self):
        Customer.objects.create(phone_number="+81312345678")
        with pytest.raises(IntegrityError), transaction.atomic():
            Customer.objects.create(phone_number="+81312345678")


class TestOperatorRules:
    def test_a_phone_routing_address_is_stored_in_e164(self):
        operator = OperatorFactory.build(routing_address="090-1111-2222")
        operator.clean()
        assert operator.routing_address == "+819011112222"

    def test_a_sip_routing_address_is_accepted(self):
        operator = OperatorFactory.build(routing_address="sip:suzuki@pbx.example.jp")
        operator.clean()
        assert operator.routing_address == "sip:suzuki@pbx.example.jp"

    @pytest.mark.parametrize("address", ["sip:nobody", "extension 12", ""])
    def test_other_routing_addresses_are_refused(self, address):
        operator = OperatorFactory.build(routing_address=address)
        with pytest.raises(ValidationError) as error:
            operator.clean()
        assert "routing_address" in error.value.message_dict

    def test_acknowledgement_of_recording_is_visible(self):
        operator = OperatorFactory(recording_acknowledged_at=None)
        assert not operator.has_acknowledged_recording
        operator.recording_acknowledged_at = timezone.now()
        assert operator.has_acknowledged_recording
        assert operator.availability == Operator.Availability.AVAILABLE


def apply(call, **callback):
    changed = Call.objects.apply_status(sid=call.sid, **callback)
    call.refresh_from_db()
    return changed


class TestCallStatus:
    def test_status_callbacks_move_the_call_forward(self):
        call = CallFactory(status=Call.Status.RINGING, duration=None, last_sequence_number=0)
        answered = timezone.now().replace(microsecond=0)
        assert apply(call, status="in-progress", sequence_number=1, timestamp=answered)
        ended = answered + timedelta(seconds=95)
        assert apply(call, status="completed", sequence_number=2, timestamp=ended, duration=95)
        assert call.status == Call.Status.COMPLETED
        assert call.answered_at == answered
        assert call.ended_at == ended
        assert call.duration == 95
        assert call.last_sequence_number == 2

    def test_a_late_callback_never_moves_the_call_backwards(self):
        call = CallFactory(status=Call.Status.RINGING, last_sequence_number=0)
        assert apply(call, status="completed", sequence_number=3, duration=30)
        assert not apply(call, status="in-progress", sequence_number=2)
        assert not apply(call, status="ringing", sequence_number=1)
        assert call.status == Call.Status.COMPLETED
        assert call.last_sequence_number == 3

    def test_a_newer_callback_cannot_move_backwards_either(self):
        call = CallFactory(status=Call.Status.IN_PROGRESS, last_sequence_number=1)
        assert not apply(call, status="ringing", sequence_number=2)
        assert call.status == Call.Status.IN_PROGRESS
        assert call.last_sequence_number == 1

    def test_a_repeated_callback_changes_nothing(self):
        call = CallFactory(status=Call.Status.RINGING, last_sequence_number=None)
        assert apply(call, status="in-progress", sequence_number=1)
        answered = call.answered_at
        assert not apply(call, status="in-progress", sequence_number=1)
        assert call.answered_at == answered

    def test_the_first_answer_time_is_kept(self):
        call = CallFactory(status=Call.Status.RINGING, last_sequence_number=0)
        first = timezone.now().replace(microsecond=0)
        apply(call, status="in-progress", sequence_number=1, timestamp=first)
        apply(call, status="in-progress", sequence_number=2, timestamp=first + timedelta(seconds=9))
        assert call.answered_at == first

    def test_a_finished_call_stays_finished(self):
        call = CallFactory(status=Call.Status.NO_ANSWER, last_sequence_number=2)
        assert not apply(call, status="completed", sequence_number=5)
        assert call.status == Call.Status.NO_ANSWER

    def test_an_unknown_status_is_an_error(self):
        with pytest.raises(ValueError, match="unknown call status"):
            Call.objects.apply_status(sid="CA1", status="exploded", sequence_number=1)

    def test_call_sids_are_unique(self):
        CallFactory(sid="CA" + "1" * 32)
        with pytest.raises(IntegrityError), transaction.atomic():
            CallFactory(sid="CA" + "1" * 32)


class TestInsertUnlessExists:
    def test_writes_a_new_row_with_its_defaults_and_reports_it(self):
        """GIVEN no call with this SID WHEN it is inserted THEN one row exists, with the
        model's defaults and auto_now timestamps filled in as save() would."""
        customer = Customer.objects.for_caller("+81312345678")
        written = insert_unless_exists(
            Call(sid="CA" + "1" * 32, customer=customer, status=Call.Status.RINGING),
            unique_field="sid",
        )
        assert written is True
        call = Call.objects.get(sid="CA" + "1" * 32)
        assert call.customer == customer
        assert call.recording_state == Call.RecordingState.NOT_RECORDED
        assert call.started_at is not None
        assert call.created_at is not None

    def test_leaves_an_existing_row_alone_and_reports_it(self):
        """GIVEN a stored call WHEN the same SID is inserted again with other values THEN
        nothing is written, no error is raised, and the stored row is unchanged."""
        CallFactory(sid="CA" + "2" * 32, from_number="+81311112222")
        written = insert_unless_exists(
            Call(sid="CA" + "2" * 32, from_number="+81399998888", status=Call.Status.RINGING),
            unique_field="sid",
        )
        assert written is False
        assert Call.objects.filter(sid="CA" + "2" * 32).count() == 1
        assert Call.objects.get(sid="CA" + "2" * 32).from_number == "+81311112222"
