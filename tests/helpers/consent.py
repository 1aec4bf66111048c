"""Answers in the consent ledger, as the IVR, staff and contracts record them."""

from consent.models import ConsentRecord
from consent.services import record_consent

Decision = ConsentRecord.Decision
Method = ConsentRecord.Method
PartyRole = ConsentRecord.PartyRole


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
