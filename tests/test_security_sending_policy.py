"""Issue 14, row 3: the portal's codes cannot be used to pump SMS or calls.

SMS go only to Japanese mobiles (070/080/090), voice codes only to Japanese landlines and
mobiles; premium-rate, free-dial, IP phones (050) and numbers abroad get nothing. The whole
portal has a budget per hour and per day, and staff are emailed once when it is reached.
Whatever the reason a code is not sent, the requester sees what they would have seen if it
had been (the local Twilio emulator records what was really sent)."""

import re

import pytest
from django.core import mail
from django.core.cache import cache
from django.urls import reverse

from contactcenter.phones import format_phone_number
from contactcenter.roles import COMPLIANCE, SUPERVISOR

from .factories import UserFactory

pytestmark = pytest.mark.django_db

START = reverse("portal:start")
VERIFY = reverse("portal:verify")
GOOD_MOBILE = "+819011112222"

REFUSED = [
    ("+19005551234", "sms"),  # US premium rate
    ("+19005551234", "call"),
    ("+449090123456", "sms"),  # UK premium rate
    ("+449090123456", "call"),
    ("+81120123456", "call"),  # 0120 free-dial
    ("+818001234567", "call"),  # 0800 free-dial
    ("+81570123456", "call"),  # 0570 ナビダイヤル (UAN)
    ("+815012345678", "sms"),  # 050 IP phone
    ("+815012345678", "call"),
    ("+14155550100", "sms"),  # abroad
    ("+14155550100", "call"),
    ("+85291234567", "sms"),
    ("+81312345678", "sms"),  # a landline cannot receive SMS
]


@pytest.fixture(autouse=True)
def _emulated_twilio(twilio, settings):
    settings.TWILIO_VERIFY_SERVICE_SID = ""
    cache.clear()
    yield twilio
    cache.clear()


def sent(twilio):
    return [m["to"] for m in twilio.state.messages] + [c["to"] for c in twilio.state.outbound_calls]


def ask(client, number, channel):
    return client.post(START, {"phone_number": number, "channel": channel})


def code_page(client, number):
    """The code page, with the number (which differs) taken out."""
    page = client.get(VERIFY).content.decode()
    page = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", page)
    return page.replace(format_phone_number(number), "NUMBER")


@pytest.mark.parametrize(("number", "channel"), REFUSED)
def test_a_refused_number_gets_nothing_and_the_same_answer_as_a_good_one(
    client, twilio, number, channel
):
    good = ask(client, GOOD_MOBILE if channel == "sms" else "+81312345678", channel)
    good_page = code_page(client, GOOD_MOBILE if channel == "sms" else "+81312345678")
    good_guess = client.post(VERIFY, {"code": "000000"}).content.decode()
    before = sent(twilio)

    refused = ask(client, number, channel)

    assert sent(twilio) == before
    assert (refused.status_code, refused["Location"]) == (good.status_code, good["Location"])
    assert code_page(client, number) == good_page
    guess = client.post(VERIFY, {"code": "000000"}).content.decode()
    strip = re.compile(r'name="csrfmiddlewaretoken" value="[^"]+"')
    assert strip.sub("", guess).replace(format_phone_number(number), "N") == strip.sub(
        "", good_guess
    ).replace(format_phone_number(GOOD_MOBILE if channel == "sms" else "+81312345678"), "N")


def test_japanese_mobiles_get_their_code_by_sms(client, twilio):
    for number in ("+819011112222", "+818011112222", "+817011112222"):
        assert ask(client, number, "sms").status_code == 302

    assert [m["to"] for m in twilio.state.messages] == [
        "+819011112222",
        "+818011112222",
        "+817011112222",
    ]


def test_a_tokyo_landline_gets_a_voice_code_but_no_sms(client, twilio):
    ask(client, "03-1234-5678", "sms")
    ask(client, "03-1234-5678", "call")

    assert twilio.state.messages == []
    assert [c["to"] for c in twilio.state.outbound_calls] == ["+81312345678"]


def test_ip_phones_get_a_voice_code_when_the_center_allows_them(client, twilio, settings):
    settings.PORTAL_VOICE_ALLOWED_PREFIXES = ("+8150",)

    ask(client, "050-1234-5678", "call")

    assert [c["to"] for c in twilio.state.outbound_calls] == ["+815012345678"]


def test_past_the_budget_nothing_is_sent_and_staff_are_emailed_once(client, twilio, settings):
    settings.PORTAL_SEND_BUDGET_PER_HOUR = 3
    UserFactory(username="kantoku", email="kantoku@example.jp", roles=[SUPERVISOR])
    UserFactory(username="compliance", email="compliance@example.jp", roles=[COMPLIANCE])

    answers = [ask(client, f"+8190888800{n:02d}", "sms").status_code for n in range(8)]

    assert answers == [302] * 8
    assert len(twilio.state.messages) == 3
    assert len(mail.outbox) == 1
    assert sorted(mail.outbox[0].to) == ["compliance@example.jp", "kantoku@example.jp"]
    assert "PORTAL_SEND_BUDGET_PER_HOUR" in mail.outbox[0].body


def test_the_daily_budget_holds_too(client, twilio, settings):
    settings.PORTAL_SEND_BUDGET_PER_DAY = 2

    answers = [ask(client, f"+8180999900{n:02d}", "sms").status_code for n in range(4)]

    assert answers == [302] * 4
    assert len(twilio.state.messages) == 2
