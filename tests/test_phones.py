"""Phone numbers are stored in E.164 and shown the way people in Japan write them."""

import pytest
from django.core.exceptions import ValidationError

from contactcenter.phones import (
    CallerIdStatus,
    format_phone_number,
    parse_phone_number,
    read_caller_id,
)


@pytest.mark.parametrize(
    ("typed", "e164"),
    [
        ("03-1234-5678", "+81312345678"),
        ("０３－１２３４－５６７８", "+81312345678"),  # full-width digits from a Japanese IME
        ("090 1234 5678", "+819012345678"),
        ("+81 90-1234-5678", "+819012345678"),
        ("+1 415 555 0123", "+14155550123"),
    ],
)
def test_numbers_are_normalised_to_e164(typed, e164):
    assert parse_phone_number(typed) == e164


@pytest.mark.parametrize("typed", ["", "   ", "abc", "03-12", "+81 0000"])
def test_invalid_numbers_are_refused_with_a_message(typed):
    with pytest.raises(ValidationError) as error:
        parse_phone_number(typed)
    assert error.value.messages[0]


def test_japanese_numbers_display_in_national_format_and_others_internationally():
    assert format_phone_number("+81312345678") == "03-1234-5678"
    assert format_phone_number("+819012345678") == "090-1234-5678"
    assert format_phone_number("+14155550123") == "+1 415-555-0123"
    assert format_phone_number("") == ""


@pytest.mark.parametrize(
    "raw", ["anonymous", "Anonymous", "restricted", "+266696687", "+86282452253", "", None]
)
def test_withheld_caller_ids_are_recognised(raw):
    assert read_caller_id(raw).status == CallerIdStatus.WITHHELD
    assert read_caller_id(raw).e164 is None


@pytest.mark.parametrize("raw", ["sip:alice@example.com", "client:agent1", "+81 0000"])
def test_identities_that_are_not_phone_numbers_are_unavailable(raw):
    assert read_caller_id(raw).status == CallerIdStatus.UNAVAILABLE


def test_a_presented_number_is_read_as_e164():
    caller = read_caller_id("+81312345678")
    assert caller.status == CallerIdStatus.PRESENTED
    assert caller.e164 == "+81312345678"
