"""The consent ledger itself: reading a customer's or an operator's standing answer, the
operator's acknowledgement, the opted-out flag it keeps, records that never change, and the
evidence each record keeps of what was heard."""

import hashlib
from contextlib import suppress
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from consent.models import ConsentRecord
from consent.services import (
    acknowledge_recording,
    has_opted_out,
    has_standing_consent,
    latest_standing_record,
    withdraw_consent,
)
from contactcenter.models import Customer

from .factories import (
    CallFactory,
    CustomerFactory,
    OperatorFactory,
    PurposeFactory,
    published_notice,
)
from .helpers.consent import (
    Decision,
    Method,
    PartyRole,
    answer_on_call,
    operator_answer,
    standing_answer,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def quality():
    return PurposeFactory(code="quality", name_ja="品質向上", retention_days=30)


@pytest.fixture
def v1(nine, quality, supervisor):
    """The first notice, announcing quality improvement, in force from 09:00."""
    return published_notice(purposes=[quality], effective_from=nine, by=supervisor)


class TestReadingTheLedger:
    def test_has_opted_out_follows_the_newest_standing_answer(self, nine):
        """GIVEN a customer with no records, then a withdrawal, then a standing grant
        THEN has_opted_out says no, yes, then no again."""
        customer = CustomerFactory()
        assert has_opted_out(customer) is False

        withdraw_consent(customer=customer, at=nine)
        assert has_opted_out(customer) is True

        standing_answer(customer, Decision.GRANTED, at=nine + timedelta(hours=1))
        assert has_opted_out(customer) is False

        standing_answer(customer, Decision.REFUSED, at=nine + timedelta(hours=2))
        assert has_opted_out(customer) is True

    def test_a_refusal_on_one_call_is_not_opting_out(self, nine):
        """GIVEN a caller who pressed 2 on one call
        THEN they have not opted out of every call."""
        call = CallFactory(started_at=nine)
        answer_on_call(call, Decision.REFUSED, at=nine + timedelta(seconds=20))

        assert has_opted_out(call.customer) is False

    def test_latest_standing_record_is_the_newest_by_date_and_ignores_calls(self, nine):
        """GIVEN standing records entered out of date order and a newer per-call record
        THEN the latest standing record is the one with the newest date, not the last
        entered and not the per-call one."""
        call = CallFactory(started_at=nine + timedelta(hours=5))
        customer = call.customer
        newest = withdraw_consent(customer=customer, at=nine + timedelta(hours=2))
        standing_answer(customer, Decision.GRANTED, at=nine + timedelta(hours=1))
        answer_on_call(call, at=nine + timedelta(hours=5, seconds=20))

        assert latest_standing_record(customer=customer) == newest

    def test_latest_standing_record_of_an_operator_is_theirs_alone(self, operator, nine):
        """GIVEN an operator's acknowledgement and another operator's later withdrawal
        THEN each operator's latest standing record is their own."""
        other = OperatorFactory()
        theirs = operator_answer(other, Decision.WITHDRAWN, at=nine)

        assert latest_standing_record(operator=operator).decision == Decision.GRANTED
        assert latest_standing_record(operator=other) == theirs
        assert latest_standing_record(customer=CustomerFactory()) is None

    def test_has_standing_consent_from_the_moment_of_acknowledgement(self, nine):
        """GIVEN an operator who acknowledged at 09:00
        THEN they had no standing consent a second before, and have it at 09:00, later, and now."""
        agent = OperatorFactory()
        assert has_standing_consent(agent) is False

        acknowledge_recording(operator=agent, by=None, at=nine)

        assert has_standing_consent(agent, at=nine - timedelta(seconds=1)) is False
        assert has_standing_consent(agent, at=nine) is True
        assert has_standing_consent(agent, at=nine + timedelta(days=1)) is True
        assert has_standing_consent(agent) is True

    def test_an_operator_had_no_standing_consent_between_withdrawing_and_acknowledging_again(
        self, operator, nine
    ):
        """GIVEN an operator who acknowledged a month ago, withdrew at 09:00 and acknowledged
        again at 11:00
        THEN they had standing consent before 09:00 and from 11:00, but not at 10:00."""
        operator_answer(operator, Decision.WITHDRAWN, at=nine)
        acknowledge_recording(operator=operator, by=None, at=nine + timedelta(hours=2))

        assert has_standing_consent(operator, at=nine - timedelta(hours=1)) is True
        assert has_standing_consent(operator, at=nine + timedelta(hours=2)) is True
        assert has_standing_consent(operator) is True
        assert has_standing_consent(operator, at=nine + timedelta(hours=1)) is False

    def test_a_withdrawn_operator_has_no_standing_consent_at_any_time(self, operator, nine):
        """GIVEN an operator who acknowledged a month ago and withdrew at 09:00
        THEN they have no standing consent now, nor for a time before the withdrawal."""
        operator_answer(operator, Decision.WITHDRAWN, at=nine)

        assert has_standing_consent(operator) is False
        assert has_standing_consent(operator, at=nine - timedelta(days=1)) is False


class TestAcknowledgeRecording:
    def test_acknowledging_records_standing_consent_and_the_time(self, v1, nine, supervisor):
        """GIVEN an operator who has not acknowledged
        WHEN a supervisor records their acknowledgement
        THEN a standing operator grant under the notice in force is added and the operator
        shows when they acknowledged."""
        agent = OperatorFactory(recording_acknowledged_at=None)
        at = nine + timedelta(minutes=5)

        record = acknowledge_recording(operator=agent, by=supervisor, method=Method.CONTRACT, at=at)

        assert record.operator == agent
        assert record.customer is None
        assert record.call is None
        assert record.party_role == PartyRole.OPERATOR
        assert record.decision == Decision.GRANTED
        assert record.method == Method.CONTRACT
        assert record.recorded_by == supervisor
        assert record.recorded_at == at
        assert record.notice == v1
        agent.refresh_from_db()
        assert agent.recording_acknowledged_at == at

    def test_acknowledging_again_writes_nothing_new(self, operator, nine):
        """GIVEN an operator who acknowledged a month ago
        WHEN they acknowledge again
        THEN they get their existing record back, no record is added and their
        acknowledgement time stays the first one."""
        first = latest_standing_record(operator=operator)
        acknowledged_at = operator.recording_acknowledged_at

        again = acknowledge_recording(operator=operator, by=operator.user, at=nine)

        assert again.pk == first.pk
        assert ConsentRecord.objects.filter(operator=operator).count() == 1
        operator.refresh_from_db()
        assert operator.recording_acknowledged_at == acknowledged_at

    def test_acknowledging_after_a_withdrawal_records_a_new_grant(self, operator, nine):
        """GIVEN an operator who withdrew their consent
        WHEN they acknowledge again
        THEN a new grant is added and the acknowledgement time moves to it."""
        operator_answer(operator, Decision.WITHDRAWN, at=nine)

        record = acknowledge_recording(
            operator=operator, by=operator.user, at=nine + timedelta(hours=1)
        )

        assert ConsentRecord.objects.filter(operator=operator).count() == 3
        assert latest_standing_record(operator=operator) == record
        operator.refresh_from_db()
        assert operator.recording_acknowledged_at == nine + timedelta(hours=1)
        assert has_standing_consent(operator) is True


class TestOptedOutFlag:
    def flag(self, customer):
        return Customer.objects.get(pk=customer.pk).recording_opted_out

    def test_a_withdrawal_turns_the_flag_on(self, nine):
        """GIVEN a customer who has not opted out
        WHEN they withdraw consent
        THEN the customer row and the instance passed in both say they opted out."""
        customer = CustomerFactory()
        assert self.flag(customer) is False

        withdraw_consent(customer=customer, at=nine)

        assert customer.recording_opted_out is True
        assert self.flag(customer) is True

    def test_a_later_standing_grant_turns_it_off_again(self, nine):
        """GIVEN a customer who withdrew
        WHEN staff record a grant for every call afterwards
        THEN the flag is off again."""
        customer = CustomerFactory()
        withdraw_consent(customer=customer, at=nine)

        standing_answer(customer, Decision.GRANTED, at=nine + timedelta(hours=1))

        assert customer.recording_opted_out is False
        assert self.flag(customer) is False

    def test_a_standing_grant_dated_before_the_withdrawal_does_not_turn_it_off(self, nine):
        """GIVEN a customer who withdrew at 10:00
        WHEN a grant dated 09:00 is entered afterwards
        THEN the withdrawal is still the newest answer and the flag stays on."""
        customer = CustomerFactory()
        withdraw_consent(customer=customer, at=nine + timedelta(hours=1))

        standing_answer(customer, Decision.GRANTED, at=nine)

        assert customer.recording_opted_out is True
        assert self.flag(customer) is True

    def test_a_withdrawal_dated_before_a_standing_grant_does_not_turn_it_on(self, nine):
        """GIVEN a customer whose standing grant is dated 10:00
        WHEN a withdrawal dated 09:00 is entered afterwards
        THEN the grant is still the newest answer and the flag stays off."""
        customer = CustomerFactory()
        standing_answer(customer, Decision.GRANTED, at=nine + timedelta(hours=1))

        withdraw_consent(customer=customer, at=nine)

        assert self.flag(customer) is False

    def test_answers_on_one_call_never_change_the_flag(self, nine):
        """GIVEN a customer who refuses on one call, and one who opted out and grants on a call
        THEN neither per-call answer changes whether they opted out of every call."""
        refusing = CallFactory(started_at=nine)
        answer_on_call(refusing, Decision.REFUSED, at=nine + timedelta(seconds=20))
        assert self.flag(refusing.customer) is False

        granting = CallFactory(started_at=nine + timedelta(hours=1))
        withdraw_consent(customer=granting.customer, at=nine)
        answer_on_call(granting, at=nine + timedelta(hours=1, seconds=20))
        assert self.flag(granting.customer) is True


class TestTheLedgerIsAppendOnly:
    @pytest.fixture
    def record(self, nine):
        call = CallFactory(started_at=nine)
        return answer_on_call(call, at=nine + timedelta(seconds=20))

    def test_saving_a_record_again_is_refused_and_changes_nothing(self, record):
        """GIVEN a recorded grant
        WHEN someone changes it and saves
        THEN ValidationError is raised and the stored record is still the grant."""
        record.decision = Decision.REFUSED
        with pytest.raises(ValidationError) as error:
            record.save()

        assert error.value.messages == ["同意記録は変更できません。新しい記録を追加してください。"]
        record.refresh_from_db()
        assert record.decision == Decision.GRANTED

    def test_deleting_a_record_is_refused(self, record):
        """GIVEN a recorded grant
        WHEN someone deletes it
        THEN ValidationError is raised and the record is still there."""
        with pytest.raises(ValidationError) as error:
            record.delete()

        assert error.value.messages == ["同意記録は削除できません。新しい記録を追加してください。"]
        assert ConsentRecord.objects.filter(pk=record.pk).exists()

    def test_bulk_updates_and_deletes_are_refused(self, record):
        """GIVEN a recorded grant
        WHEN someone updates or deletes it through a queryset
        THEN ValidationError is raised and the record is unchanged."""
        with pytest.raises(ValidationError):
            ConsentRecord.objects.filter(pk=record.pk).update(decision=Decision.REFUSED)
        with pytest.raises(ValidationError):
            ConsentRecord.objects.filter(pk=record.pk).delete()

        record.refresh_from_db()
        assert record.decision == Decision.GRANTED

    def test_a_new_record_cannot_reuse_an_existing_records_id(self, record):
        """GIVEN a recorded grant
        WHEN a new record is saved with the grant's id
        THEN the stored grant is unchanged and no record is lost: records are only ever added."""
        copy = ConsentRecord(
            pk=record.pk,
            customer=record.customer,
            call=record.call,
            party_role=PartyRole.CALLER,
            decision=Decision.REFUSED,
            method=Method.STAFF_ENTRY,
        )
        with suppress(ValidationError, IntegrityError), transaction.atomic():
            copy.save()

        record.refresh_from_db()
        assert (record.decision, record.method) == (Decision.GRANTED, Method.IVR_KEYPRESS)
        assert ConsentRecord.objects.count() == 1

    def test_a_record_about_both_a_customer_and_an_operator_is_refused(self, operator):
        """GIVEN a record naming a customer and an operator
        THEN the database refuses it: a record has exactly one subject."""
        with pytest.raises(IntegrityError), transaction.atomic():
            ConsentRecord.objects.create(
                customer=CustomerFactory(),
                operator=operator,
                party_role=PartyRole.OPERATOR,
                decision=Decision.GRANTED,
                method=Method.CONTRACT,
            )

    def test_a_record_about_nobody_is_refused(self):
        """GIVEN a record naming neither a customer nor an operator
        THEN the database refuses it."""
        with pytest.raises(IntegrityError), transaction.atomic():
            ConsentRecord.objects.create(
                party_role=PartyRole.CALLER, decision=Decision.GRANTED, method=Method.VERBAL
            )
        assert not ConsentRecord.objects.filter(operator=None, customer=None).exists()

    def test_an_operators_record_must_be_in_the_operator_role(self, operator):
        """GIVEN a record about an operator with the caller's role
        THEN the database refuses it."""
        with pytest.raises(IntegrityError), transaction.atomic():
            ConsentRecord.objects.create(
                operator=operator,
                party_role=PartyRole.CALLER,
                decision=Decision.GRANTED,
                method=Method.CONTRACT,
            )
        assert ConsentRecord.objects.filter(operator=operator).count() == 1


class TestEvidence:
    def test_the_announcement_heard_is_kept_with_its_sha256(self, v1, nine, operator):
        """GIVEN the announcement text the caller heard
        WHEN their keypress is recorded
        THEN the text, its SHA-256 over UTF-8, the digits and the Twilio request are kept."""
        text = v1.announcement_ja
        call = CallFactory(operator=operator, started_at=nine + timedelta(hours=1))

        record = answer_on_call(
            call,
            at=call.started_at + timedelta(seconds=20),
            announcement_text=text,
            source_request={"CallSid": call.sid, "Digits": "1"},
        )

        stored = ConsentRecord.objects.get(pk=record.pk)
        assert stored.announcement_text == text
        assert stored.announcement_sha256 == hashlib.sha256(text.encode("utf-8")).hexdigest()
        assert stored.digits == "1"
        assert stored.source_request == {"CallSid": call.sid, "Digits": "1"}
        assert stored.recorded_by_system == "twilio-ivr"

    def test_without_an_announcement_no_hash_is_stored(self, nine):
        """GIVEN a grant noted by staff with no announcement text
        THEN no hash is stored."""
        record = standing_answer(CustomerFactory(), Decision.GRANTED, at=nine)

        assert ConsentRecord.objects.get(pk=record.pk).announcement_sha256 == ""

    def test_the_notice_in_force_when_answering_is_recorded(
        self, v1, nine, quality, operator, supervisor
    ):
        """GIVEN v1 in force from 09:00 and v2 from 12:00
        THEN an answer at 11:59 records v1, one at 12:00 records v2, one before 09:00 records
        no notice, and a notice named by the caller of record_consent wins."""
        v2 = published_notice(
            purposes=[quality], effective_from=nine + timedelta(hours=3), by=supervisor
        )

        def call():
            return CallFactory(operator=operator, started_at=nine)

        before = answer_on_call(call(), at=nine - timedelta(seconds=1))
        morning = answer_on_call(call(), at=nine + timedelta(hours=3) - timedelta(seconds=1))
        noon = answer_on_call(call(), at=nine + timedelta(hours=3))
        named = answer_on_call(call(), at=nine + timedelta(hours=4), notice=v1)

        assert before.notice is None
        assert morning.notice.version == 1
        assert noon.notice.version == 2
        assert noon.notice == v2
        assert ConsentRecord.objects.get(pk=named.pk).notice == v1

    def test_a_withdrawal_is_not_tied_to_a_notice(self, v1, nine):
        """GIVEN a notice in force
        WHEN a customer withdraws
        THEN the withdrawal records no notice: it answers no notice in particular."""
        record = withdraw_consent(customer=CustomerFactory(), at=nine + timedelta(hours=1))

        assert record.notice is None
        assert record.decision == Decision.WITHDRAWN
        assert record.method == Method.STAFF_ENTRY
        assert record.party_role == PartyRole.CALLER
        assert record.call is None
