"""May a call be recorded, and for which purposes until when: the caller's answer on the
call, their standing answer, the operator's acknowledgement, and the notice they heard."""

from datetime import timedelta

import pytest

from consent.services import (
    acknowledge_recording,
    may_record,
    record_consent,
    usable_purposes,
    withdraw_consent,
)

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
    codes,
    operator_answer,
    standing_answer,
)

pytestmark = pytest.mark.django_db


def told_the_operator(call, decision, *, at):
    """A later answer on the call, noted by the operator (the keypress is taken once)."""
    return record_consent(
        customer=call.customer,
        call=call,
        party_role=PartyRole.CALLER,
        decision=decision,
        method=Method.VERBAL,
        at=at,
    )


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
        told_the_operator(call, Decision.REFUSED, at=call.started_at + timedelta(minutes=3))

        assert may_record(call=call).reason == "refused"

    def test_a_withdrawal_on_the_call_after_a_grant_is_reported_as_withdrawn(
        self, v1, nine, operator
    ):
        """GIVEN a caller who granted on a call and withdrew for that call only
        THEN the call may not be recorded, because consent was withdrawn."""
        call = CallFactory(operator=operator, started_at=nine + timedelta(hours=1))
        answer_on_call(call, at=call.started_at + timedelta(seconds=20))
        told_the_operator(call, Decision.WITHDRAWN, at=call.started_at + timedelta(minutes=3))

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
