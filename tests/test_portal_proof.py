"""The customer portal's first step: proof that the caller holds the number, by a one-time
code sent by SMS or read out in a voice call through the local Twilio emulator."""

import re
import secrets
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from portal import services
from portal.models import PhoneVerification

from .factories import CallFactory, CustomerFactory
from .helpers.portal import find_call, when

pytestmark = pytest.mark.django_db

START = reverse("portal:start")
VERIFY = reverse("portal:verify")
MINE = reverse("portal:mine")
KNOWN = "+819011112222"
UNKNOWN = "+819033334444"


@pytest.fixture(autouse=True)
def _fresh_limits():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _emulated_twilio(twilio, settings):
    settings.TWILIO_VERIFY_BASE_URL = twilio.url
    settings.TWILIO_VERIFY_SERVICE_SID = ""
    return twilio


def ask(client, number, channel="sms", **extra):
    return client.post(START, {"phone_number": number, "channel": channel}, **extra)


def last_code(twilio):
    return re.search(r"\b(\d{6})\b", twilio.state.messages[-1]["body"]).group(1)


def test_the_page_asks_for_the_number_in_japanese(client):
    page = client.get(START).content.decode()

    assert "お電話をおかけになった電話番号" in page
    assert 'autocomplete="tel"' in page
    assert 'name="channel"' in page


def test_a_code_goes_by_sms_and_only_its_keyed_hash_is_kept(client, twilio):
    response = ask(client, "090-1111-2222")

    assert response.status_code == 302
    assert response["Location"] == VERIFY
    [message] = twilio.state.messages
    assert message["to"] == KNOWN
    code = last_code(twilio)
    verification = PhoneVerification.objects.get()
    assert verification.phone_number == KNOWN
    assert code not in verification.code_hash
    assert len(verification.code_hash) == 64
    assert verification.expires_at - verification.created_at == timedelta(minutes=10)


def test_a_code_by_voice_call_is_read_in_japanese(client, twilio):
    ask(client, "03-1234-5678", channel="call")

    [call] = twilio.state.outbound_calls
    assert call["to"] == "+81312345678"
    assert 'language="ja-JP"' in call["twiml"]
    digits = re.search(r"((?:\d、){5}\d)", call["twiml"]).group(1)
    assert call["twiml"].count(digits) == 2  # read twice
    assert not twilio.state.messages


def test_the_right_code_proves_the_number_and_shows_its_calls_only_once_found(client, twilio):
    mine = CallFactory(customer=CustomerFactory(phone_number=KNOWN), duration=95)
    theirs = CallFactory(
        customer=CustomerFactory(phone_number=UNKNOWN),
        duration=44,
        started_at=timezone.now() - timedelta(days=2),
    )
    ask(client, KNOWN)

    response = client.post(VERIFY, {"code": last_code(twilio)})

    assert response.status_code == 302
    assert response["Location"] == MINE
    shown = timezone.localtime(mine.started_at).strftime("%Y-%m-%d %H:%M")
    assert shown not in client.get(MINE).content.decode()  # not before the caller says when
    find_call(client, mine)
    page = client.get(MINE).content.decode()
    assert shown in page
    assert "95" in page
    day, at = when(theirs)
    client.post(MINE, {"find": "1", "day": day, "time": at})
    assert timezone.localtime(theirs.started_at).strftime("%Y-%m-%d %H:%M") not in page


def test_known_and_unknown_numbers_get_the_same_answer(client, twilio):
    CallFactory(customer=CustomerFactory(phone_number=KNOWN))
    known = ask(client, KNOWN)
    known_page = client.get(VERIFY).content.decode().replace("090-1111-2222", "NUMBER")
    client.cookies.clear()
    unknown = ask(client, UNKNOWN)
    unknown_page = client.get(VERIFY).content.decode().replace("090-3333-4444", "NUMBER")

    assert (known.status_code, known["Location"]) == (unknown.status_code, unknown["Location"])
    assert re.sub(r'value="[^"]+"', "", known_page) == re.sub(r'value="[^"]+"', "", unknown_page)
    assert [m["to"] for m in twilio.state.messages] == [KNOWN, UNKNOWN]


def test_an_unknown_number_sees_no_calls_after_the_proof(client, twilio):
    ask(client, UNKNOWN)
    client.post(VERIFY, {"code": last_code(twilio)})

    today = timezone.localdate().isoformat()
    page = client.post(MINE, {"find": "1", "day": today, "time": "10:00"}).content.decode()

    assert "その日時に、この番号からの通話は見つかりませんでした。" in page


def test_a_code_works_once(client, twilio):
    ask(client, KNOWN)
    code = last_code(twilio)
    client.post(VERIFY, {"code": code})

    assert not services.check_code(phone_number=KNOWN, code=code).verified


def test_a_new_code_replaces_the_previous_one(client, twilio, monkeypatch):
    # Two different codes, so that the first can only be accepted if it was kept.
    codes = iter([123456, 654321])
    monkeypatch.setattr(secrets, "randbelow", lambda _upper: next(codes))
    ask(client, KNOWN)
    first = last_code(twilio)
    ask(client, KNOWN)

    outcome = services.check_code(phone_number=KNOWN, code=first)

    assert (first, last_code(twilio)) == ("123456", "654321")
    assert outcome.verified is False


def test_an_expired_code_is_refused(client, twilio):
    ask(client, KNOWN)
    PhoneVerification.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    response = client.post(VERIFY, {"code": last_code(twilio)})

    assert response.status_code == 400
    assert "有効期限" in response.content.decode()


def test_five_wrong_codes_lock_the_code_even_against_the_right_one(client, twilio):
    ask(client, KNOWN)
    code = last_code(twilio)
    wrong = f"{(int(code) + 1) % 10**6:06d}"

    for _attempt in range(5):
        response = client.post(VERIFY, {"code": wrong})
        assert response.status_code == 400
    response = client.post(VERIFY, {"code": code})

    assert response.status_code == 400
    assert "新しいコード" in response.content.decode()
    assert PhoneVerification.objects.get().verified_at is None


def test_ten_thousand_guesses_give_no_success():
    """The real code is among the guesses; the attempt limit still lets none through."""
    code = "004321"
    PhoneVerification.objects.create(
        phone_number=KNOWN,
        channel="sms",
        code_hash=services._code_hash(KNOWN, code),
        expires_at=timezone.now() + timedelta(minutes=10),
    )

    successes = sum(
        services.check_code(
            phone_number=KNOWN, code=f"{guess:06d}", ip=f"10.{guess // 256 % 256}.{guess % 256}.1"
        ).verified
        for guess in range(10_000)
    )

    assert successes == 0
    assert PhoneVerification.objects.get().attempts == 5


def test_sending_is_limited_per_number(client, twilio):
    for _ in range(3):
        assert ask(client, KNOWN).status_code == 302

    response = ask(client, KNOWN)

    assert response.status_code == 429
    assert "15分" in response.content.decode()
    assert len(twilio.state.messages) == 3


def test_sending_is_limited_per_address(client, twilio):
    numbers = [f"+8190555500{n:02d}" for n in range(11)]
    answers = [ask(client, number).status_code for number in numbers]

    assert answers == [302] * 10 + [429]
    assert len(twilio.state.messages) == 10


def test_checking_is_limited_per_address(twilio):
    for n in range(30):
        services.check_code(phone_number=f"+8190666600{n:02d}", code="000000", ip="192.0.2.7")

    outcome = services.check_code(phone_number=KNOWN, code="000000", ip="192.0.2.7")

    assert not outcome.verified
    assert "1時間" in str(outcome.message)


def test_a_number_that_is_not_one_gets_a_clear_error(client, twilio):
    response = ask(client, "12345")

    assert response.status_code == 400
    assert "電話番号" in response.content.decode()
    assert not twilio.state.messages
    assert not PhoneVerification.objects.exists()


def test_twilio_unreachable_is_said_and_nothing_is_kept(client, settings):
    settings.TWILIO_API_BASE_URL = "http://127.0.0.1:1"

    response = ask(client, KNOWN)

    assert response.status_code == 503
    assert "送信できませんでした" in response.content.decode()
    assert not PhoneVerification.objects.exists()


def test_with_twilio_verify_the_code_never_reaches_us(client, twilio, settings):
    settings.TWILIO_VERIFY_SERVICE_SID = "VA" + "1" * 32
    ask(client, KNOWN)
    verification = PhoneVerification.objects.get()
    code = twilio.state.verifications[(settings.TWILIO_VERIFY_SERVICE_SID, KNOWN)]["code"]

    assert verification.via_twilio_verify
    assert verification.code_hash == ""
    assert not twilio.state.messages
    assert client.post(VERIFY, {"code": f"{(int(code) + 1) % 10**6:06d}"}).status_code == 400
    assert client.post(VERIFY, {"code": code})["Location"] == MINE


def test_the_calls_page_needs_a_recent_proof(client, twilio):
    assert client.get(MINE)["Location"] == START
    assert client.get(VERIFY)["Location"] == START
    ask(client, KNOWN)
    client.post(VERIFY, {"code": last_code(twilio)})
    session = client.session
    session["portal_proven"]["at"] = (timezone.now() - timedelta(minutes=31)).isoformat()
    session.save()

    assert client.get(MINE)["Location"] == START


def test_finishing_forgets_the_proof(client, twilio):
    ask(client, KNOWN)
    client.post(VERIFY, {"code": last_code(twilio)})

    client.post(reverse("portal:leave"))

    assert client.get(MINE)["Location"] == START


def test_in_development_without_twilio_the_code_is_written_to_the_log(client, settings, caplog):
    settings.DEBUG = True
    settings.TWILIO_API_BASE_URL = "https://api.twilio.com"
    settings.TWILIO_ACCOUNT_SID = "AC" + "0" * 32

    response = ask(client, KNOWN)
    code = re.search(r"\b(\d{6})\b", caplog.text).group(1)

    assert response["Location"] == VERIFY
    assert "not sent" in caplog.text
    assert client.post(VERIFY, {"code": code})["Location"] == MINE
