"""The consent ledger and the questions asked of it: may a call be recorded, for which
purposes and until when, and what a customer's or an operator's standing answer is."""

import hashlib
from contextlib import suppress
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from consent.models import ConsentRecord
from consent.services import (
    acknowledge_recording,
    has_opted_out,
    has_standing_consent,
    latest_standing_record,
    may_record,
    record_consent,
    usable_purposes,
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

pytestmark = pytest.mark.django_db

Decision = ConsentRecord.Decision
Method = ConsentRecord.Method
PartyRole = ConsentRecord.PartyRole


@pytest.fixture
def nine():
    """09:00 tomorrow in Tokyo: a fixed time at which a notice may still be made to take effect."""
    tomorrow = timezone.localtime() + timedelta(days=1)
    return tomorrow.replace(hour=9, minute=0, second=0, microsecond=0)


@pytest.fixture
def quality():
    return PurposeFactory(code="quality", name_ja="品質向上", retention_days=30)


@pytest.fixture
def training():
    return PurposeFactory(
        code="training", name_ja="研修", retention_days=90, allows_training_review=True
    )


@pytest.fixture
def v1(nine, quality, supervisor):
    """The first notice, announcing quality improvement, in force from 09:00."""
    return published_notice(purposes=[quality], effective_from=nine, by=supervisor)


def answer_on_call(call, decision=Decision.GRANTED, *, at, **fields):
    """The caller's keypress after the announcement of ``call``."""
    return record_consent(
        customer=call.customer,
        call=call,
        party_role=PartyRole.CALLER,
        decision=decision,
        method=Method.IVR_KEYPRESS,
        digits="1" if decision == Decision.GRANTED else "2",
        recorded_by_system="twilio-ivr",
        at=at,
        **fields,
    )


def standing_answer(customer, decision, *, at):
    """A customer's answer for every call, taken by staff."""
    return record_consent(
        customer=customer,
        party_role=PartyRole.CALLER,
        decision=decision,
        method=Method.STAFF_ENTRY,
        at=at,
    )


def operator_answer(operator, decision, *, at):
    return record_consent(
        operator=operator,
        party_role=PartyRole.OPERATOR,
        decision=decision,
        method=Method.CONTRACT,
        at=at,
    )


def codes(permission):
    return [announced.purpose.code for announced in permission.purposes]


class TestMayRecord:
    def test_a_caller_who_granted_on_the_call_with_an_acknowledged_operator_may_be_recorded(
        self, v1, nine, operator
    ):
        """GIVEN a call answered by an operator who acknowledged recording a month ago
        WHEN the caller presses 1 after the announcement
        THEN the call may be recorded under the notice in force, for its purposes."""
        call = CallFactory(operator=operator, started_at=nine + timedelta(hours=1))
        answer_on_call(call, at=call.started_at + timedelta(seconds=20))

        permission = may_record(call=call)

        assert permission
        assert permission.allowed is True
        assert permission.reason == "granted"
        assert permission.message == "すべての当事者が同意しています。"
        assert permission.notice == v1
        assert codes(permission) == ["quality"]

    def test_a_caller_who_pressed_2_is_refused(self, v1, nine, operator):
        """GIVEN a caller who pressed 2 after the announcement
        THEN the call may not be recorded, because the caller refused, for no purpose."""
        call = CallFactory(operator=operator, started_at=nine + timedelta(hours=1))
        answer_on_call(call, Decision.REFUSED, at=call.started_at + timedelta(seconds=20))

        permission = may_record(call=call)

        assert not permission
        assert permission.reason == "refused"
        assert permission.notice is None
        assert permission.purposes == ()

    def test_a_refusal_on_the_call_after_a_grant_wins(self, v1, nine, operator):
        """GIVEN a caller who granted on a call and then told the operator they refuse
        THEN the newest answer for the call counts and the call may not be recorded."""
        call = CallFactory(operator=operator, started_at=nine + timedelta(hours=1))
        answer_on_call(call, at=call.started_at + timedelta(seconds=20))
        answer_on_call(call, Decision.REFUSED, at=call.started_at + timedelta(minutes=3))

        assert may_record(call=call).reason == "refused"

    def test_a_withdrawal_on_the_call_after_a_grant_is_reported_as_withdrawn(
        self, v1, nine, operator
    ):
        """GIVEN a caller who granted on a call and withdrew for that call only
        THEN the call may not be recorded, because consent was withdrawn."""
        call = CallFactory(operator=operator, started_at=nine + timedelta(hours=1))
        answer_on_call(call, at=call.started_at + timedelta(seconds=20))
        answer_on_call(call, Decision.WITHDRAWN, at=call.started_at + timedelta(minutes=3))

        assert may_record(call=call).reason == "withdrawn"

    def test_a_call_without_a_consent_record_may_not_be_recorded(self, v1, nine, operator):
        """GIVEN a customer who granted on an earlier call but said nothing on this one
        THEN this call may not be recorded: consent is given call by call."""
        earlier = CallFactory(operator=operator, started_at=nine + timedelta(hours=1))
        answer_on_call(earlier, at=earlier.started_at + timedelta(seconds=20))
        call = CallFactory(
            operator=operator, customer=earlier.customer, started_at=nine + timedelta(hours=2)
        )

        permission = may_record(call=call)

        assert not permission
        assert permission.reason == "no_consent"
        assert may_record(call=earlier)

    def test_a_call_without_a_customer_may_not_be_recorded(self, v1, nine, operator):
        """GIVEN a call not linked to any customer
        THEN it may not be recorded, since nobody's consent can be checked."""
        call = CallFactory(
            customer=None,
            from_number="anonymous",
            operator=operator,
            started_at=nine + timedelta(hours=1),
        )

        permission = may_record(call=call)

        assert not permission
        assert permission.reason == "no_customer"

    def test_a_withdrawal_after_the_call_takes_back_its_recording(self, v1, nine, operator):
        """GIVEN a caller who granted on a call
        WHEN they later withdraw consent for every call
        THEN that past call may no longer be recorded or used: they have opted out."""
        call = CallFactory(operator=operator, started_at=nine + timedelta(hours=1))
        answer_on_call(call, at=call.started_at + timedelta(seconds=20))
        assert may_record(call=call)

        withdraw_consent(customer=call.customer, note="電話で申し出", at=nine + timedelta(hours=5))

        permission = may_record(call=call)
        assert not permission
        assert permission.reason == "opted_out"
        assert permission.purposes == ()

    def test_a_withdrawal_after_the_call_still_counts_once_the_customer_grants_again(
        self, v1, nine, operator
    ):
        """GIVEN a caller who granted on a call, then withdrew, then granted again for all calls
        THEN the call made before the withdrawal stays unusable (withdrawn), while a call
        granted after the new standing grant may be recorded."""
        call = CallFactory(operator=operator, started_at=nine + timedelta(hours=1))
        answer_on_call(call, at=call.started_at + timedelta(seconds=20))
        withdraw_consent(customer=call.customer, at=nine + timedelta(hours=2))
        standing_answer(call.customer, Decision.GRANTED, at=nine + timedelta(hours=3))
        later = CallFactory(
            operator=operator, customer=call.customer, started_at=nine + timedelta(hours=4)
        )
        answer_on_call(later, at=later.started_at + timedelta(seconds=20))

        assert may_record(call=call).reason == "withdrawn"
        assert may_record(call=later).reason == "granted"

    def test_a_customer_who_opted_out_before_the_call_is_not_recorded_even_after_pressing_1(
        self, v1, nine, operator
    ):
        """GIVEN a customer who withdrew consent for every call
        WHEN a later call carries a grant for that call
        THEN it may still not be recorded, because the customer opted out."""
        customer = CustomerFactory()
        withdraw_consent(customer=customer, at=nine + timedelta(minutes=30))
        call = CallFactory(
            operator=operator, customer=customer, started_at=nine + timedelta(hours=1)
        )
        answer_on_call(call, at=call.started_at + timedelta(seconds=20))

        permission = may_record(call=call)
        assert not permission
        assert permission.reason == "opted_out"

    def test_a_standing_refusal_counts_as_opting_out(self, v1, nine, operator):
        """GIVEN a customer whose standing answer is a refusal for every call
        THEN none of their calls may be recorded."""
        call = CallFactory(operator=operator, started_at=nine + timedelta(hours=1))
        answer_on_call(call, at=call.started_at + timedelta(seconds=20))
        standing_answer(call.customer, Decision.REFUSED, at=nine + timedelta(hours=2))

        assert may_record(call=call).reason == "opted_out"

    def test_an_operator_who_never_acknowledged_recording_blocks_it(self, v1, nine):
        """GIVEN an operator with no standing consent on the ledger
        THEN a call they answered may not be recorded even though the caller granted."""
        call = CallFactory(operator=OperatorFactory(), started_at=nine + timedelta(hours=1))
        answer_on_call(call, at=call.started_at + timedelta(seconds=20))

        permission = may_record(call=call)
        assert not permission
        assert permission.reason == "operator_without_consent"

    def test_an_operator_who_acknowledged_only_after_the_call_started_blocks_it(self, v1, nine):
        """GIVEN an operator who acknowledged recording an hour after a call started
        THEN that call may not be recorded: consent must exist when the call starts."""
        agent = OperatorFactory()
        call = CallFactory(operator=agent, started_at=nine + timedelta(hours=1))
        answer_on_call(call, at=call.started_at + timedelta(seconds=20))
        acknowledge_recording(operator=agent, by=None, at=call.started_at + timedelta(hours=1))

        assert may_record(call=call).reason == "operator_without_consent"
        later = CallFactory(operator=agent, started_at=nine + timedelta(hours=3))
        answer_on_call(later, at=later.started_at + timedelta(seconds=20))
        assert may_record(call=later)

    def test_an_operator_who_withdraws_after_the_call_blocks_it(self, v1, nine, operator):
        """GIVEN an operator who had consented when the call started but withdrew afterwards
        THEN the call may no longer be recorded or used: consent must still hold."""
        call = CallFactory(operator=operator, started_at=nine + timedelta(hours=1))
        answer_on_call(call, at=call.started_at + timedelta(seconds=20))
        operator_answer(operator, Decision.WITHDRAWN, at=nine + timedelta(hours=2))

        assert may_record(call=call).reason == "operator_without_consent"

    def test_an_operator_who_had_withdrawn_when_the_call_started_blocks_it(
        self, v1, nine, operator
    ):
        """GIVEN an operator who withdrew their consent before a call and acknowledged again
        only after it
        THEN the call may not be recorded: they had no standing consent when it started."""
        operator_answer(operator, Decision.WITHDRAWN, at=nine)
        call = CallFactory(operator=operator, started_at=nine + timedelta(hours=1))
        answer_on_call(call, at=call.started_at + timedelta(seconds=20))
        acknowledge_recording(operator=operator, by=None, at=nine + timedelta(hours=2))

        assert may_record(call=call).reason == "operator_without_consent"

    def test_a_call_without_an_operator_needs_only_the_callers_consent(self, v1, nine):
        """GIVEN a call that no operator answered
        WHEN the caller granted
        THEN it may be recorded: there is no operator whose consent is missing."""
        call = CallFactory(operator=None, started_at=nine + timedelta(hours=1))
        answer_on_call(call, at=call.started_at + timedelta(seconds=20))

        assert may_record(call=call).reason == "granted"

    def test_the_purposes_are_those_of_the_notice_heard_when_consenting(
        self, v1, nine, quality, training, operator, supervisor
    ):
        """GIVEN v1 (quality) in force from 09:00 and v2 (quality and training) from 12:00
        WHEN a caller consents at 10:00 and another at 13:00
        THEN the morning call keeps v1's purposes and days even after v2 takes effect, and
        the afternoon call has v2's."""
        morning = CallFactory(operator=operator, started_at=nine + timedelta(hours=1))
        answer_on_call(morning, at=morning.started_at + timedelta(seconds=20))
        quality.retention_days = 60
        quality.save()
        v2 = published_notice(
            purposes=[quality, training], effective_from=nine + timedelta(hours=3), by=supervisor
        )
        afternoon = CallFactory(operator=operator, started_at=nine + timedelta(hours=4))
        answer_on_call(afternoon, at=afternoon.started_at + timedelta(seconds=20))

        kept = may_record(call=morning)
        assert kept.notice == v1
        assert codes(kept) == ["quality"]
        assert [announced.days for announced in kept.purposes] == [30]

        new = may_record(call=afternoon)
        assert new.notice == v2
        assert codes(new) == ["quality", "training"]
        assert [announced.days for announced in new.purposes] == [60, 90]


class TestUsablePurposes:
    @pytest.fixture
    def call(self, nine, quality, training, operator, supervisor):
        """A call at 10:00 whose caller granted under a notice announcing quality improvement
        for 30 days and training for 90 days."""
        published_notice(purposes=[quality, training], effective_from=nine, by=supervisor)
        call = CallFactory(operator=operator, started_at=nine + timedelta(hours=1))
        answer_on_call(call, at=call.started_at + timedelta(seconds=20))
        return call

    def test_inside_every_window_every_purpose_is_usable(self, call):
        """GIVEN a granted call
        THEN on the day after it both purposes are usable, each until its own day, with its
        training flag."""
        usable = usable_purposes(call=call, at=call.started_at + timedelta(days=1))

        assert [(u.purpose.code, u.usable_until, u.allows_training_review) for u in usable] == [
            ("quality", call.started_at + timedelta(days=30), False),
            ("training", call.started_at + timedelta(days=90), True),
        ]

    def test_each_purpose_ends_at_its_own_time(self, call):
        """GIVEN purposes announced for 30 and 90 days
        THEN the 30-day purpose is usable up to just before day 30 and not from day 30 on,
        while the 90-day purpose lasts until day 90, after which nothing is usable."""

        def usable_at(delta):
            return [u.purpose.code for u in usable_purposes(call=call, at=call.started_at + delta)]

        assert usable_at(timedelta(days=30) - timedelta(seconds=1)) == ["quality", "training"]
        assert usable_at(timedelta(days=30)) == ["training"]
        assert usable_at(timedelta(days=90) - timedelta(seconds=1)) == ["training"]
        assert usable_at(timedelta(days=90)) == []

    def test_the_window_is_the_one_announced_even_if_the_purpose_is_edited(self, call, quality):
        """GIVEN a purpose shortened to 7 days after the notice was published
        THEN recordings consented under that notice keep the 30 days it announced."""
        quality.retention_days = 7
        quality.save()

        usable = usable_purposes(call=call, at=call.started_at + timedelta(days=10))

        assert [u.purpose.code for u in usable] == ["quality", "training"]

    def test_the_window_counts_from_the_start_of_the_call_not_the_consent(self, call):
        """GIVEN a grant recorded 20 seconds into the call
        THEN the 30-day purpose is no longer usable 10 seconds after day 30 of the call,
        although 30 days have not yet passed since the grant."""
        usable = usable_purposes(call=call, at=call.started_at + timedelta(days=30, seconds=10))

        assert [u.purpose.code for u in usable] == ["training"]

    def test_a_call_without_consent_has_no_usable_purpose(self, v1, nine, operator):
        """GIVEN a call with no consent record
        THEN no purpose is usable, at any time."""
        call = CallFactory(operator=operator, started_at=nine + timedelta(hours=1))

        assert usable_purposes(call=call, at=call.started_at + timedelta(days=1)) == []

    def test_after_a_withdrawal_no_purpose_is_usable(self, call):
        """GIVEN a granted call whose customer withdrew later
        THEN nothing is usable even inside the announced windows."""
        withdraw_consent(customer=call.customer, at=call.started_at + timedelta(days=2))

        assert usable_purposes(call=call, at=call.started_at + timedelta(days=3)) == []


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
        call = CallFactory(operator=operator, started_at=nine)

        before = answer_on_call(call, at=nine - timedelta(seconds=1))
        morning = answer_on_call(call, at=nine + timedelta(hours=3) - timedelta(seconds=1))
        noon = answer_on_call(call, at=nine + timedelta(hours=3))
        named = answer_on_call(call, at=nine + timedelta(hours=4), notice=v1)

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
