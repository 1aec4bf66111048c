"""Card payments during a call with Twilio Pay (agent-assisted), through the official client and
the local emulator over HTTP: the recording is paused before the payment opens and resumed
when it ends, both moments on the timeline; the caller's keys go to the connector, and no card
digit reaches our database, our logs or the audit trail."""

import logging
import re

import pytest
from django.core import serializers
from django.urls import reverse

from audit.models import AccessEvent
from contactcenter import payments
from contactcenter.models import Call, CallEvent, CallPayment
from twilio_emulator import CallDriver

from .helpers.webhooks import twilio_post

pytestmark = pytest.mark.django_db

RecordingState = Call.RecordingState
Kind = CallEvent.Kind
CARD, EXPIRY, CVC = "4242424242424242", "0931", "737"
PAY = "/twilio/voice/payments"


def scrubbed(text):
    """``text`` without the hexadecimal SIDs, hashes and tokens and the timestamps, whose
    digits could hold a short card detail by chance."""
    text = re.sub(r"[0-9a-fA-F]{16,}", "", text)
    return re.sub(r"\d{4}-\d{2}-\d{2}[T ][0-9:.+Z-]+", "", text)


@pytest.fixture(autouse=True)
def connector(settings):
    settings.TWILIO_PAY_CONNECTOR = "stripe_test"


def recording_at_twilio(twilio, call):
    return twilio.state.recordings[call.twilio_recording_sid]["status"]


def step(client, call, name, **form):
    return client.post(
        reverse("contactcenter:call-payment", args=[call.sid]), {"step": name, **form}
    )


def deliver(client, twilio):
    """Twilio's queued payment status callbacks, signed, to our webhook."""
    answers = []
    for url, params in twilio.state.take_payment_callbacks():
        assert url.endswith(PAY)
        answers.append(twilio_post(client, PAY, params).status_code)
    return answers


def key_in(client, twilio, payment, keys):
    twilio.state.press_payment_keys(payment.sid, keys)
    assert deliver(client, twilio) == [200]


def test_a_whole_payment_pauses_the_recording_and_keeps_only_the_result(
    client, live_call, operator, twilio, caplog
):
    caplog.set_level(logging.DEBUG)
    client.force_login(operator.user)

    step(client, live_call, "start", amount="12,800")
    payment = CallPayment.objects.get(call=live_call)
    at_twilio = twilio.state.payments[payment.sid]
    assert at_twilio["connector"] == "stripe_test"
    assert (at_twilio["charge_amount"], at_twilio["currency"]) == ("12800", "jpy")
    assert at_twilio["status_callback"].endswith(PAY)
    assert recording_at_twilio(twilio, live_call) == "paused"
    assert deliver(client, twilio) == [200]
    payment.refresh_from_db()
    assert payment.required == "payment-card-number,expiration-date,security-code"

    for part, keys in (("card_number", CARD), ("expiration_date", EXPIRY), ("security_code", CVC)):
        step(client, live_call, part)
        assert twilio.state.payments[payment.sid]["capture"] is not None
        assert deliver(client, twilio) == [200]
        key_in(client, twilio, payment, keys)
    payment.refresh_from_db()
    assert payment.required == ""
    assert "確定してください" in client.get(reverse("contactcenter:live-calls")).content.decode()

    step(client, live_call, "complete")
    assert deliver(client, twilio) == [200]

    payment.refresh_from_db()
    assert payment.status == CallPayment.Status.COMPLETED
    assert payment.result == "success"
    assert payment.token.startswith("tok_")
    assert payment.confirmation_code.startswith("ch_")
    assert recording_at_twilio(twilio, live_call) == "in-progress"
    live_call.refresh_from_db()
    assert live_call.recording_state == RecordingState.RECORDING
    kinds = list(live_call.events.values_list("kind", flat=True))
    assert kinds == [
        Kind.RECORDING_PAUSED,
        Kind.PAYMENT_STARTED,
        Kind.RECORDING_RESUMED,
        Kind.PAYMENT_ENDED,
    ]
    # The card went to the connector; none of it is ours.
    assert twilio.state.payments[payment.sid]["captured"]["payment-card-number"] == CARD
    everything = serializers.serialize(
        "json",
        [
            *Call.objects.all(),
            *CallEvent.objects.all(),
            *CallPayment.objects.all(),
            *AccessEvent.objects.all(),
        ],
    )
    assert CARD not in everything and CARD not in caplog.text
    # Short details are looked for where no SID, hash or time stamp could hold them by chance.
    everything, logged = scrubbed(everything), scrubbed(caplog.text)
    for secret in (CARD[-4:], EXPIRY, CVC):
        assert secret not in everything
        assert secret not in logged


def test_cancelling_resumes_the_recording_and_charges_nothing(client, live_call, operator, twilio):
    client.force_login(operator.user)
    step(client, live_call, "start", amount="500")
    payment = CallPayment.objects.get(call=live_call)

    step(client, live_call, "cancel")
    deliver(client, twilio)

    payment.refresh_from_db()
    assert payment.status == CallPayment.Status.CANCELLED
    assert payment.token == ""
    assert recording_at_twilio(twilio, live_call) == "in-progress"
    assert twilio.state.payments[payment.sid]["status"] == "cancel"


def test_completing_before_every_part_is_keyed_is_a_failed_payment(
    client, live_call, operator, twilio
):
    client.force_login(operator.user)
    step(client, live_call, "start", amount="500")
    payment = CallPayment.objects.get(call=live_call)

    step(client, live_call, "complete")
    deliver(client, twilio)

    payment.refresh_from_db()
    assert payment.status == CallPayment.Status.FAILED
    assert payment.result == "validation-error"
    assert recording_at_twilio(twilio, live_call) == "in-progress"


def test_no_payment_opens_while_the_recording_cannot_be_paused(client, live_call, operator, twilio):
    del twilio.state.calls[live_call.sid]  # Twilio no longer knows the call
    client.force_login(operator.user)

    response = step(client, live_call, "start", amount="500")

    assert response.status_code == 302
    assert CallPayment.objects.count() == 0
    assert twilio.state.payments == {}
    [message] = list(response.wsgi_request._messages)
    assert "一時停止できなかった" in str(message)


@pytest.mark.parametrize("amount", ["", "abc", "0", "1000000", "-5"])
def test_a_bad_amount_is_refused_and_nothing_changes(client, live_call, operator, twilio, amount):
    client.force_login(operator.user)

    response = step(client, live_call, "start", amount=amount)

    assert response.status_code == 302
    assert CallPayment.objects.count() == 0
    assert recording_at_twilio(twilio, live_call) == "in-progress"
    [message] = list(response.wsgi_request._messages)
    assert "円" in str(message)


def test_one_payment_at_a_time(client, live_call, operator, twilio):
    client.force_login(operator.user)
    step(client, live_call, "start", amount="500")

    response = step(client, live_call, "start", amount="500")

    assert CallPayment.objects.count() == 1
    assert "すでに" in str(list(response.wsgi_request._messages)[-1])


def test_someone_elses_call_is_refused(client, live_call, other_operator, twilio):
    client.force_login(other_operator.user)

    assert step(client, live_call, "start", amount="500").status_code == 403
    assert twilio.state.payments == {}


def test_without_a_connector_there_is_no_payment_button(
    client, live_call, operator, settings, twilio
):
    settings.TWILIO_PAY_CONNECTOR = ""
    client.force_login(operator.user)

    page = client.get(reverse("contactcenter:live-calls")).content.decode()
    assert "カード決済" not in page
    step(client, live_call, "start", amount="500")
    assert CallPayment.objects.count() == 0


def test_the_callback_is_signature_checked_and_an_unknown_payment_changes_nothing(client):
    unsigned = client.post(PAY, {"Sid": "PK" + "0" * 32, "Result": "success"})
    assert unsigned.status_code == 403
    signed = twilio_post(client, PAY, {"Sid": "PK" + "0" * 32, "Result": "success"})
    assert signed.status_code == 200
    assert CallPayment.objects.count() == 0


def test_card_fields_are_hidden_from_error_reports(rf, settings):
    from twilio.request_validator import RequestValidator

    from telephony import views

    params = {"Sid": "PK" + "0" * 32, "PaymentCardNumber": "xxxxxxxxxxxx4242"}
    signature = RequestValidator(settings.TWILIO_AUTH_TOKEN).compute_signature(
        settings.PUBLIC_BASE_URL + PAY, params
    )
    request = rf.post(PAY, params, HTTP_X_TWILIO_SIGNATURE=signature)
    assert views.payment_status(request).status_code == 200
    assert {"PaymentCardNumber", "ExpirationDate", "SecurityCode"} <= set(
        request.sensitive_post_parameters
    )


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_in_a_browser_an_operator_takes_a_card_payment(
    page, live_server, live_db, twilio, settings
):
    from django.conf import settings as django_settings
    from playwright.sync_api import expect

    from .factories import PurposeFactory, published_notice
    from .helpers.browser import log_in
    from .helpers.staff import acknowledged_operator

    published_notice(purposes=[PurposeFactory()])
    acknowledged_operator("op")
    driver = CallDriver(
        app_url=live_server.url,
        public_base_url=django_settings.PUBLIC_BASE_URL,
        account_sid=django_settings.TWILIO_ACCOUNT_SID,
        auth_token=django_settings.TWILIO_AUTH_TOKEN,
        emulator_url=twilio.url,
    )
    call = driver.run(digits="1", hold=True)
    recording = twilio.state.recordings[call.recording_sid]

    log_in(page, "op", "pass")
    page.goto("/operator/calls/")
    row = page.locator(f"#call-{call.call_sid}")
    row.get_by_label("金額（円）").fill("3000")
    row.get_by_role("button", name="カード決済").click()
    expect(row.get_by_role("status")).to_contain_text("3,000")
    assert recording["status"] == "paused"
    payment = CallPayment.objects.get(call__sid=call.call_sid)
    driver.deliver_payment_callbacks()
    for name, keys in (
        ("カード番号の入力を依頼", CARD),
        ("有効期限の入力を依頼", EXPIRY),
        ("セキュリティコードの入力を依頼", CVC),
    ):
        row.get_by_role("button", name=name).click()
        driver.deliver_payment_callbacks()
        driver.press_payment_keys(payment.sid, keys)
    page.reload()
    expect(row.get_by_role("status")).to_contain_text("確定してください")
    row.get_by_role("button", name="決済を確定").click()
    driver.deliver_payment_callbacks()
    expect(row).to_contain_text("録音中")
    assert recording["status"] == "in-progress"
    page.reload()
    expect(row).to_contain_text("完了")
    assert CARD not in page.content()
    driver.hang_up(call)


@pytest.mark.django_db(transaction=True)
def test_a_payment_during_a_recorded_call_leaves_a_silent_gap_and_no_digit_anywhere(
    driver, twilio, live_db, caplog, settings, tasks_in_process
):
    import io
    import time
    import wave

    from recordings.models import Recording

    from .factories import PurposeFactory, published_notice
    from .helpers.recordings import decrypted, stored_files
    from .helpers.staff import acknowledged_operator

    caplog.set_level(logging.DEBUG)
    published_notice(purposes=[PurposeFactory(code="quality", name_ja="品質向上")])
    operator = acknowledged_operator("op")
    result = driver.run(digits="1", hold=True)
    call = Call.objects.get(sid=result.call_sid)

    payment = payments.start(call=call, by=operator.user, amount=4800)
    driver.deliver_payment_callbacks()
    for part, keys in (("card_number", CARD), ("expiration_date", EXPIRY), ("security_code", CVC)):
        payments.ask_for(payment=payment, by=operator.user, part=part)
        driver.deliver_payment_callbacks()
        driver.press_payment_keys(payment.sid, keys)
    time.sleep(1)  # the caller takes a moment over the card
    payments.finish(payment=payment, by=operator.user)
    driver.deliver_payment_callbacks()
    driver.hang_up(result, talk_seconds=6)

    recording = Recording.objects.get(sid=result.recording_sid)
    assert recording.status == Recording.Status.STORED
    with wave.open(io.BytesIO(decrypted(recording))) as audio:
        frames = audio.readframes(audio.getnframes())
    longest = run = 0
    for at in range(0, len(frames), 4):
        run = run + 1 if frames[at : at + 4] == b"\0\0\0\0" else 0
        longest = max(longest, run)
    assert longest >= 8000  # at least a second of silence where the card was keyed
    payment.refresh_from_db()
    assert payment.result == "success"
    everything = serializers.serialize(
        "json",
        [
            *Call.objects.all(),
            *CallEvent.objects.all(),
            *CallPayment.objects.all(),
            *AccessEvent.objects.all(),
            *Recording.objects.all(),
        ],
    )
    from consent.models import ConsentRecord

    everything += serializers.serialize("json", ConsentRecord.objects.all())
    assert CARD not in everything and CARD not in caplog.text
    for secret in (EXPIRY, CVC):
        assert secret not in scrubbed(everything)
        assert secret not in scrubbed(caplog.text)
    for path in stored_files():
        assert CARD.encode() not in path.read_bytes()


# --- by the automated voice: Twilio <Pay> -----------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_automated_payment_takes_the_card_with_pay_and_puts_the_caller_back(
    driver, twilio, live_db, caplog, tasks_in_process
):
    from recordings.models import Recording

    from .factories import PurposeFactory, published_notice
    from .helpers.staff import acknowledged_operator

    caplog.set_level(logging.DEBUG)
    published_notice(purposes=[PurposeFactory(code="quality", name_ja="品質向上")])
    operator = acknowledged_operator("op")
    result = driver.run(digits="1", hold=True)
    call = Call.objects.get(sid=result.call_sid)
    first_recording = result.recording_sid

    payment = payments.start_by_ivr(call=call, by=operator.user, amount=2000)
    assert twilio.state.calls[call.sid]["redirect"]["url"].endswith(
        f"/twilio/voice/pay?payment={payment.pk}"
    )
    driver.follow_redirect(result, card=(CARD, EXPIRY, CVC))

    # <Pay>, as the caller heard it.
    pay = result.pay
    assert pay["paymentConnector"] == "stripe_test"
    assert (pay["chargeAmount"], pay["currency"], pay["language"]) == ("2000", "jpy", "ja-JP")
    assert pay["action"].endswith(f"/twilio/voice/pay/done?payment={payment.pk}")
    assert pay["statusCallback"].split("#")[0].endswith(PAY)
    assert any("録音されず" in text for _lang, text in result.transcript)
    assert any("お支払いを受け付けました" in text for _lang, text in result.transcript)
    # The result, kept; the caller back with an operator, recorded anew.
    payment.refresh_from_db()
    assert payment.status == CallPayment.Status.COMPLETED
    assert payment.result == "success" and payment.token.startswith("tok_")
    assert result.dial is not None and result.recording_sid not in (None, first_recording)
    assert Recording.objects.get(sid=first_recording).status == Recording.Status.STORED
    kinds = list(call.events.values_list("kind", flat=True))
    assert kinds.count(Kind.PAYMENT_STARTED) == 1 and kinds.count(Kind.PAYMENT_ENDED) == 1
    driver.hang_up(result)
    everything = serializers.serialize(
        "json", [*Call.objects.all(), *CallEvent.objects.all(), *CallPayment.objects.all()]
    ) + serializers.serialize("json", AccessEvent.objects.all())
    assert CARD not in everything and CARD not in caplog.text
    for secret in (CARD[-4:], EXPIRY):
        assert secret not in scrubbed(everything)
        assert secret not in scrubbed(caplog.text)


def test_the_pay_twiml_for_an_open_payment_and_for_a_stale_one(client, live_call, operator, twilio):
    from .helpers.webhooks import parse_twiml

    payment = payments.start_by_ivr(call=live_call, by=operator.user, amount=1500)

    root = parse_twiml(
        twilio_post(
            client, "/twilio/voice/pay", {"CallSid": live_call.sid}, query=f"payment={payment.pk}"
        )
    )
    [pay] = root.iter("Pay")
    assert pay.get("chargeAmount") == "1500"
    assert pay.get("tokenType") == "one-time"
    assert pay.get("securityCode") == "true"
    # Played again after it ended (a replayed request): straight back to an operator.
    CallPayment.objects.filter(pk=payment.pk).update(status=CallPayment.Status.COMPLETED)
    again = parse_twiml(
        twilio_post(
            client, "/twilio/voice/pay", {"CallSid": live_call.sid}, query=f"payment={payment.pk}"
        )
    )
    assert list(again.iter("Pay")) == []
    assert list(again.iter("Dial")) != []


def test_a_payment_that_fails_at_pay_is_kept_as_failed_and_the_caller_goes_back(
    client, live_call, operator, twilio
):
    from .helpers.webhooks import parse_twiml

    payment = payments.start_by_ivr(call=live_call, by=operator.user, amount=1500)

    root = parse_twiml(
        twilio_post(
            client,
            "/twilio/voice/pay/done",
            {
                "CallSid": live_call.sid,
                "Result": "too-many-failed-attempts",
                "PaymentCardNumber": "xxxxxxxxxxxx4242",
            },
            query=f"payment={payment.pk}",
        )
    )

    payment.refresh_from_db()
    assert payment.status == CallPayment.Status.FAILED
    assert payment.result == "too-many-failed-attempts"
    assert "完了しませんでした" in "".join(say.text or "" for say in root.iter("Say"))
    assert list(root.iter("Dial")) != []


def test_the_automated_payment_fails_cleanly_when_twilio_cannot_redirect(
    client, live_call, operator, twilio
):
    del twilio.state.calls[live_call.sid]
    client.force_login(operator.user)

    response = step(client, live_call, "ivr", amount="800")

    payment = CallPayment.objects.get(call=live_call)
    assert payment.status == CallPayment.Status.FAILED
    assert payment.error
    assert "Twilio" in str(list(response.wsgi_request._messages)[-1])
    assert payments.open_payment(live_call) is None
