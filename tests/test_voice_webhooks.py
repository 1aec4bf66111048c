"""Twilio's voice webhooks: signatures, the announcement and consent question, routing,
recording only with consent, status callbacks, and answers that survive internal failures."""

import hashlib
import itertools
import xml.etree.ElementTree as ET
from datetime import timedelta
from urllib.parse import parse_qs, urldefrag, urlsplit

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from consent.models import ConsentRecord
from consent.services import record_consent, withdraw_consent
from contactcenter.models import Call, CallEvent, Customer, Operator
from contactcenter.phones import CallerIdStatus
from telephony import voice

from .factories import CustomerFactory, OperatorFactory, PurposeFactory, published_notice
from .helpers.staff import acknowledged_operator
from .helpers.webhooks import incoming_call, parse_twiml, twilio_post

pytestmark = pytest.mark.django_db

CALL_SID = "CA" + "1" * 32
INCOMING = "/twilio/voice/incoming"
CONSENT = "/twilio/voice/consent"
STATUS = "/twilio/voice/status"


@pytest.fixture
def notice():
    return published_notice(
        purposes=[
            PurposeFactory(code="quality", name_ja="品質向上", name_en="service quality"),
            PurposeFactory(
                code="training",
                name_ja="研修",
                name_en="operator training",
                retention_days=90,
                allows_training_review=True,
            ),
        ]
    )


@pytest.fixture
def operators():
    return [acknowledged_operator("op-a"), acknowledged_operator("op-b")]


def call_params(**extra):
    return incoming_call(CALL_SID, **extra)


parse = parse_twiml


def call_records():
    return ConsentRecord.objects.filter(call__sid=CALL_SID)


def every_attribute(root):
    return {name for element in root.iter() for name in element.attrib}


def consent_query(notice, *, lang="ja", attempt=1):
    return f"notice={notice.version}&lang={lang}&attempt={attempt}"


def answer(client, notice, digits, *, lang="ja", attempt=1, token=None):
    params = call_params(CallStatus="in-progress")
    if digits is not None:
        params["Digits"] = digits
    return twilio_post(
        client,
        CONSENT,
        params,
        query=consent_query(notice, lang=lang, attempt=attempt),
        token=token,
    )


class TestSignatures:
    def test_a_missing_signature_is_refused_and_changes_nothing(self, client, notice, caplog):
        response = client.post(INCOMING, call_params())
        assert response.status_code == 403
        assert not Call.objects.exists()
        assert not Customer.objects.exists()
        assert "missing X-Twilio-Signature" in caplog.text

    def test_a_forged_signature_is_refused(self, client, notice, caplog):
        response = twilio_post(client, INCOMING, call_params(), signature="Zm9yZ2Vk")
        assert response.status_code == 403
        assert not Call.objects.exists()
        assert "signature does not match" in caplog.text

    def test_a_replayed_signature_with_changed_parameters_is_refused(
        self, client, notice, operators
    ):
        twilio_post(client, INCOMING, call_params())
        genuine = twilio_post(
            client, CONSENT, call_params(Digits="2"), query=consent_query(notice)
        ).wsgi_request
        signature = genuine.headers["X-Twilio-Signature"]
        replay = client.post(
            f"{CONSENT}?{consent_query(notice)}",
            call_params(Digits="1"),
            HTTP_X_TWILIO_SIGNATURE=signature,
        )
        assert replay.status_code == 403
        assert list(
            ConsentRecord.objects.filter(call__sid=CALL_SID).values_list("decision", flat=True)
        ) == ["refused"]

    def test_a_signature_over_another_host_is_refused(self, client, notice):
        """Only PUBLIC_BASE_URL is trusted, never the Host header the request names."""
        from twilio.request_validator import RequestValidator

        signature = RequestValidator(settings.TWILIO_AUTH_TOKEN).compute_signature(
            "http://testserver" + INCOMING, call_params()
        )
        assert twilio_post(client, INCOMING, call_params(), signature=signature).status_code == 403

    def test_a_signature_made_with_another_token_is_refused(self, client, notice):
        from twilio.request_validator import RequestValidator

        signature = RequestValidator("someone-elses-token").compute_signature(
            settings.PUBLIC_BASE_URL + INCOMING, call_params()
        )
        assert twilio_post(client, INCOMING, call_params(), signature=signature).status_code == 403

    @pytest.mark.parametrize("path", [INCOMING, CONSENT, STATUS, "/twilio/recordings/status"])
    def test_every_webhook_checks_the_signature(self, client, path):
        assert client.post(path, call_params()).status_code == 403

    def test_webhooks_need_no_csrf_token_but_only_post(self, notice):
        from django.test import Client

        strict = Client(enforce_csrf_checks=True)
        assert twilio_post(strict, INCOMING, call_params()).status_code == 200
        assert strict.get(INCOMING).status_code == 405


class TestIncomingCall:
    def test_the_announcement_and_the_question_are_gathered_as_one_digit(self, client, notice):
        root = parse(twilio_post(client, INCOMING, call_params()))
        gather = root.find("Gather")
        assert gather.get("input") == "dtmf"
        assert gather.get("numDigits") == "1"
        action = urlsplit(gather.get("action"))
        assert (
            f"{action.scheme}://{action.netloc}{action.path}" == settings.PUBLIC_BASE_URL + CONSENT
        )
        assert parse_qs(action.query) == {"notice": ["1"], "lang": ["ja"], "attempt": ["1"]}
        says = gather.findall("Say")
        assert says[0].get("language") == "ja-JP"
        assert says[0].text == notice.announcement_ja
        assert "品質向上" in says[0].text and "トゥイリオ" in says[0].text
        assert "プライバシー通知" in says[0].text
        assert "1を" in says[1].text and "2を" in says[1].text
        assert says[2].get("language") == "en-US" and "press 9" in says[2].text
        # No answer falls through to the same place without Digits.
        assert root.find("Redirect").text == gather.get("action")

    def test_the_call_and_customer_are_created_once_however_often_twilio_retries(
        self, client, notice
    ):
        first = twilio_post(client, INCOMING, call_params())
        again = twilio_post(client, INCOMING, call_params())
        assert first.content == again.content
        call = Call.objects.get()
        assert call.sid == CALL_SID
        assert call.customer.phone_number == "+81312345678"
        assert call.status == Call.Status.RINGING
        assert Customer.objects.count() == 1
        assert not call_records().exists()

    def test_a_known_customer_is_found_by_their_number(self, client, notice):
        customer = CustomerFactory(phone_number="+81312345678")
        twilio_post(client, INCOMING, call_params())
        assert Call.objects.get().customer == customer

    def test_a_withheld_number_gets_an_anonymous_customer_and_is_asked_too(self, client, notice):
        root = parse(twilio_post(client, INCOMING, call_params(From="anonymous")))
        assert root.find("Gather") is not None
        customer = Call.objects.get().customer
        assert customer.caller_id_status == CallerIdStatus.WITHHELD
        twilio_post(client, INCOMING, call_params(From="anonymous"))
        assert Customer.objects.count() == 1

    def test_a_customer_who_withdrew_is_told_and_connected_without_a_question(
        self, client, notice, operators
    ):
        withdraw_consent(customer=CustomerFactory(phone_number="+81312345678"))
        root = parse(twilio_post(client, INCOMING, call_params()))
        assert root.find("Gather") is None
        assert "録音いたしません" in root.find("Say").text
        dial = root.find("Dial")
        assert dial is not None
        assert "record" not in every_attribute(root)
        assert "recordingStatusCallback" not in every_attribute(root)

    def test_without_a_published_notice_nothing_is_recorded(self, client, operators):
        root = parse(twilio_post(client, INCOMING, call_params()))
        assert root.find("Gather") is None
        assert root.find("Dial") is not None
        assert "record" not in every_attribute(root)


class TestConsentAnswer:
    def test_pressing_1_records_consent_and_connects_with_recording(
        self, client, notice, operators
    ):
        twilio_post(client, INCOMING, call_params())
        root = parse(answer(client, notice, "1", token="token-1"))

        record = ConsentRecord.objects.get(call__sid=CALL_SID)
        assert record.decision == ConsentRecord.Decision.GRANTED
        assert record.method == ConsentRecord.Method.IVR_KEYPRESS
        assert record.party_role == ConsentRecord.PartyRole.CALLER
        assert record.digits == "1"
        assert record.notice == notice
        assert notice.announcement_ja in record.announcement_text
        assert (
            record.announcement_sha256
            == hashlib.sha256(record.announcement_text.encode()).hexdigest()
        )
        assert record.recorded_by_system == "twilio-ivr"
        assert record.source_request["CallSid"] == CALL_SID
        assert record.source_request["idempotency_token"] == "token-1"

        dial = root.find("Dial")
        assert dial.get("record") == "record-from-answer-dual"
        assert urldefrag(dial.get("recordingStatusCallback")).url == (
            settings.PUBLIC_BASE_URL + "/twilio/recordings/status"
        )
        assert dial.get("recordingStatusCallbackEvent") == "in-progress completed absent"
        numbers = [number.text for number in dial.findall("Number")]
        assert numbers == [operator.routing_address for operator in operators]
        status_callback = urlsplit(dial.find("Number").get("statusCallback"))
        assert status_callback.path == STATUS
        assert parse_qs(status_callback.query) == {"operator": [str(operators[0].pk)]}
        assert Call.objects.get().recording_state == Call.RecordingState.REQUESTED

    def test_pressing_2_records_the_refusal_and_connects_without_any_recording(
        self, client, notice, operators
    ):
        twilio_post(client, INCOMING, call_params())
        root = parse(answer(client, notice, "2"))
        record = ConsentRecord.objects.get(call__sid=CALL_SID)
        assert record.decision == ConsentRecord.Decision.REFUSED
        assert record.digits == "2"
        assert "録音いたしません" in root.find("Say").text
        assert root.find("Dial") is not None
        assert not every_attribute(root) & {
            "record",
            "recordingStatusCallback",
            "recordingStatusCallbackEvent",
            "trim",
        }
        assert Call.objects.get().recording_state == Call.RecordingState.NOT_RECORDED

    def test_no_answer_is_asked_once_more_then_treated_as_not_agreed(
        self, client, notice, operators
    ):
        twilio_post(client, INCOMING, call_params())
        again = parse(answer(client, notice, None))
        gather = again.find("Gather")
        assert parse_qs(urlsplit(gather.get("action")).query)["attempt"] == ["2"]
        assert "もう一度" in gather.find("Say").text
        assert not call_records().exists()

        final = parse(answer(client, notice, None, attempt=2))
        record = call_records().get()
        assert record.decision == ConsentRecord.Decision.REFUSED
        assert record.digits == ""
        assert "no valid keypress" in record.note
        assert final.find("Dial") is not None
        assert "record" not in every_attribute(final)

    def test_a_key_other_than_1_2_or_9_is_asked_again(self, client, notice, operators):
        twilio_post(client, INCOMING, call_params())
        root = parse(answer(client, notice, "5"))
        assert root.find("Gather") is not None
        assert not call_records().exists()

    def test_pressing_9_switches_to_english_and_the_english_text_is_the_evidence(
        self, client, notice, operators
    ):
        twilio_post(client, INCOMING, call_params())
        root = parse(answer(client, notice, "9"))
        says = root.find("Gather").findall("Say")
        assert {say.get("language") for say in says} == {"en-US"}
        assert says[0].text == notice.announcement_en
        assert "Twilio" in says[0].text
        assert Call.objects.get().language == "en"
        parse(answer(client, notice, "1", lang="en"))
        record = call_records().get()
        assert record.decision == ConsentRecord.Decision.GRANTED
        assert record.announcement_text.startswith(notice.announcement_en)
        assert record.source_request["language"] == "en"

    def test_a_retried_answer_is_recorded_once(self, client, notice, operators):
        twilio_post(client, INCOMING, call_params())
        first = answer(client, notice, "1", token="same-request")
        retry = answer(client, notice, "1", token="same-request")
        assert first.content == retry.content
        assert call_records().count() == 1

    def test_only_available_operators_with_standing_consent_are_rung(self, client, notice):
        ringing = acknowledged_operator("ready")
        acknowledged_operator("away").__class__.objects.filter(user__username="away").update(
            availability=Operator.Availability.AWAY
        )
        OperatorFactory()  # available but never acknowledged recording
        withdrawn = acknowledged_operator("withdrew")
        record_consent(
            operator=withdrawn, party_role="operator", decision="withdrawn", method="contract"
        )
        twilio_post(client, INCOMING, call_params())
        root = parse(answer(client, notice, "1"))
        assert [n.text for n in root.find("Dial").findall("Number")] == [ringing.routing_address]

    def test_sip_operators_are_dialled_as_sip(self, client, notice):
        operator = acknowledged_operator("sip-user")
        Operator.objects.filter(pk=operator.pk).update(routing_address="sip:agent@pbx.example.jp")
        twilio_post(client, INCOMING, call_params())
        root = parse(answer(client, notice, "1"))
        assert root.find("Dial/Sip").text == "sip:agent@pbx.example.jp"

    def test_with_no_operator_available_the_caller_hears_an_apology_and_the_call_is_missed(
        self, client, notice
    ):
        twilio_post(client, INCOMING, call_params())
        root = parse(answer(client, notice, "1"))
        assert root.find("Dial") is None
        assert root.find("Say[last()]").text == (
            "申し訳ございません。ただいま電話が大変混み合っております。"
            "恐れ入りますが、しばらくたってからおかけ直しください。"
        )
        assert root.find("Hangup") is not None
        call = Call.objects.get()
        assert call.missed
        assert call.events.filter(kind=CallEvent.Kind.NO_OPERATOR).exists()


def status_params(status, sequence, **extra):
    return call_params(
        CallStatus=status,
        SequenceNumber=str(sequence),
        Timestamp=(timezone.now() + timedelta(seconds=sequence)).strftime(
            "%a, %d %b %Y %H:%M:%S +0000"
        ),
        **extra,
    )


STATUS_SEQUENCE = [
    status_params("ringing", 0),
    status_params("in-progress", 1),
    status_params("completed", 2, CallDuration="95"),
]


def call_state(call):
    call.refresh_from_db()
    return (
        call.status,
        call.duration,
        call.last_sequence_number,
        call.answered_at is not None,
        call.ended_at is not None,
    )


class TestCallStatus:
    def test_in_order_callbacks_complete_the_call(self, client, notice):
        twilio_post(client, INCOMING, call_params())
        for params in STATUS_SEQUENCE:
            assert twilio_post(client, STATUS, params).status_code == 200
        call = Call.objects.get()
        assert call_state(call) == ("completed", 95, 2, True, True)

    @pytest.mark.parametrize(
        "order", [*list(itertools.permutations(range(3)))[1:], (0, 1, 1, 2, 2, 0), (2, 2, 1, 0)]
    )
    def test_duplicated_and_shuffled_callbacks_end_in_the_same_state(self, client, notice, order):
        twilio_post(client, INCOMING, call_params())
        for index in order:
            twilio_post(client, STATUS, STATUS_SEQUENCE[index])
        call = Call.objects.get()
        status, duration, sequence, _answered, ended = call_state(call)
        assert (status, duration, sequence, ended) == ("completed", 95, 2, True)
        assert Call.objects.count() == 1

    def test_the_operator_who_answers_is_set_on_the_call(self, client, notice, operators):
        twilio_post(client, INCOMING, call_params())
        leg = {
            "CallSid": "CA" + "2" * 32,
            "ParentCallSid": CALL_SID,
            "CallStatus": "in-progress",
            "AccountSid": settings.TWILIO_ACCOUNT_SID,
        }
        twilio_post(client, STATUS, leg, query=f"operator={operators[1].pk}")
        later = {**leg, "CallSid": "CA" + "3" * 32}
        twilio_post(client, STATUS, later, query=f"operator={operators[0].pk}")
        call = Call.objects.get()
        assert call.operator == operators[1]
        assert call.events.filter(kind=CallEvent.Kind.OPERATOR_ANSWERED).count() == 1

    def test_an_unknown_status_changes_nothing(self, client, notice):
        twilio_post(client, INCOMING, call_params())
        assert twilio_post(client, STATUS, status_params("exploded", 5)).status_code == 200
        assert call_state(Call.objects.get())[0] == "ringing"


class TestFailuresInsideWebhooks:
    """If something breaks inside, the caller still gets valid TwiML and is connected."""

    @pytest.fixture
    def broken_notice_table(self):
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE privacy_notice RENAME TO privacy_notice_unavailable")
        yield
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE privacy_notice_unavailable RENAME TO privacy_notice")

    def test_a_failing_incoming_webhook_connects_without_recording(
        self, client, operators, broken_notice_table, caplog
    ):
        root = parse(twilio_post(client, INCOMING, call_params()))
        assert root.find("Dial") is not None
        assert [n.text for n in root.find("Dial").findall("Number")] == [
            operator.routing_address for operator in operators
        ]
        assert "record" not in every_attribute(root)
        assert f"failed for CallSid {CALL_SID}" in caplog.text

    def test_a_failing_consent_webhook_connects_without_recording(
        self, client, notice, operators, caplog
    ):
        twilio_post(client, INCOMING, call_params())
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE consent_consentrecord RENAME TO consent_unavailable")
        try:
            root = parse(answer(client, notice, "1"))
        finally:
            with connection.cursor() as cursor:
                cursor.execute("ALTER TABLE consent_unavailable RENAME TO consent_consentrecord")
        assert root.find("Dial") is not None
        assert "record" not in every_attribute(root)
        assert Call.objects.get().events.filter(kind=CallEvent.Kind.WEBHOOK_FAILED).exists()
        assert f"failed for CallSid {CALL_SID}" in caplog.text

    def test_without_any_operator_the_fallback_apologises(self, client, broken_notice_table):
        root = parse(twilio_post(client, INCOMING, call_params()))
        assert root.find("Hangup") is not None


def test_the_webhooks_make_no_request_to_twilio(client, notice, operators, twilio):
    twilio_post(client, INCOMING, call_params())
    answer(client, notice, "1")
    for params in STATUS_SEQUENCE:
        twilio_post(client, STATUS, params)
    assert twilio.state.requests == []


def test_fallback_twiml_is_valid_without_a_database(operators):
    root = ET.fromstring(voice.fallback_twiml())
    assert root.find("Dial") is not None
