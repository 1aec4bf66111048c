"""Issue 16 (deliver 4 and 5): every decision on a request — granted, refused, closed — is a
written notice kept with it (the decision, the legal ground, the reasons in full, how to ask
again or complain), read at a signed link; a kind with a fee waits for the payment; the queue
shows the art. 39 two-week mark."""

import re
import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import AccessEvent
from portal import decisions
from portal.models import CustomerRequest, DecisionNotice
from privacy.models import Organisation

from .helpers.portal import prove
from .test_portal_kinds import LANDLINE, MOBILE, ask, notice_page, recording_of
from .test_portal_requests import QUEUE, decide

pytestmark = pytest.mark.django_db

Action = AccessEvent.Action


@pytest.fixture(autouse=True)
def _fresh_limits(portal_codes):
    """Codes through the Twilio emulator, and the portal's limits fresh (conftest)."""


@pytest.fixture
def asked(client, twilio, notice, operator):
    """A mobile's request for the purposes of use, received."""
    recording_of(MOBILE, operator)
    prove(client, twilio, MOBILE)
    made = ask(client, "purpose_notice")
    client.logout()
    return made


def set_organisation(**fields):
    Organisation.objects.filter(singleton=1).update(**fields)


class TestTheWrittenDecision:
    def test_a_refusal_states_its_ground_the_reasons_in_full_and_where_to_complain(
        self, client, twilio, asked, supervisor
    ):
        set_organisation(
            accredited_body_name_ja="一般財団法人日本情報経済社会推進協会",
            accredited_body_contact_ja="個人情報保護苦情相談室 03-5860-7565",
        )
        reasons = "ご本人からのご請求であることを確認できませんでした。\n再度お手続きください。"

        decide(client, supervisor, asked, "refuse", ground="identity", reason=reasons)

        written = DecisionNotice.objects.get(request=asked)
        assert written.decision == "refused" and written.issued_by == supervisor
        assert "第37条第2項" in written.legal_ground
        assert written.reasons == reasons
        for expected in ("お客様相談窓口", "0120-000-000", "日本情報経済社会推進協会", "第39条"):
            assert expected in written.recourse
        client.logout()
        page = notice_page(client, twilio)
        assert "ご請求に対する決定の通知" in page
        assert "再度お手続きください。" in page and "日本情報経済社会推進協会" in page
        decided = AccessEvent.objects.get(action=Action.REQUEST_DECIDED)
        assert decided.detail["notice"] == written.pk

    def test_without_an_accredited_body_none_is_named(self, client, twilio, asked, supervisor):
        decide(client, supervisor, asked, "approve", reason="確認済み")

        assert "認定個人情報保護団体" not in DecisionNotice.objects.get().recourse

    def test_a_request_closed_without_action_gets_a_notice_too(
        self, client, twilio, asked, supervisor
    ):
        decide(client, supervisor, asked, "close", reason="ご請求が取り下げられました")

        asked.refresh_from_db()
        assert asked.status == "closed" and not asked.is_open
        written = asked.decision_notice
        assert written.decision == "closed" and "取り下げ" in written.reasons
        assert "手続きを終了しました" in twilio.state.messages[-1]["body"]

    def test_a_signed_link_that_was_altered_is_a_japanese_page_not_found(
        self, client, twilio, asked, supervisor
    ):
        decide(client, supervisor, asked, "approve")
        client.logout()
        good = decisions.notice_url(DecisionNotice.objects.get())
        path = "/" + good.split("://", 1)[1].split("/", 1)[1]

        assert client.get(path).status_code == 200
        signed = path.rstrip("/").rsplit("/", 1)[1]
        for bad in (signed[:-1] + ("A" if signed[-1] != "A" else "B"), "1", "MQ:abc:def"):
            response = client.get(reverse("portal:decision", args=[bad]))
            assert response.status_code == 404
            assert "ページが見つかりません" in response.content.decode()
        # A link made for the voice call does not open the page, nor the reverse.
        voice = decisions.voice_url(DecisionNotice.objects.get()).rsplit("/", 3)[-3]
        assert client.get(reverse("portal:decision", args=[voice])).status_code == 404
        assert client.post(reverse("portal:decision-voice", args=[signed])).status_code == 403

    def test_the_caller_sees_the_written_decision_from_their_requests(
        self, client, twilio, asked, supervisor
    ):
        decide(client, supervisor, asked, "approve")
        client.logout()
        prove(client, twilio, MOBILE)

        page = client.get(reverse("portal:mine")).content.decode()

        assert "書面の通知" in page
        assert DecisionNotice.objects.get().link.split("/requests", 1)[1] in page

    def test_a_refused_landline_is_offered_the_notice_and_hears_it_on_pressing_1(
        self, client, twilio, notice, operator, supervisor, settings
    ):
        recording_of(LANDLINE, operator)
        prove(client, twilio, LANDLINE, "call")
        made = ask(client, "cross_border")
        before = len(twilio.state.outbound_calls)

        decide(client, supervisor, made, "refuse", ground="business", reason="業務上の支障のため")

        [answer] = twilio.state.outbound_calls[before:]
        root = ET.fromstring(answer["twiml"])
        assert "お応えできませんでした" in "".join(s.text for s in root.findall("Say"))
        action = root.find("Gather").get("action")[len(settings.PUBLIC_BASE_URL) :]
        client.logout()
        read = ET.fromstring(client.post(action, {"Digits": "1"}).content)
        said = "".join(s.text for s in read.iter("Say"))
        assert "業務上の支障のため" in said and "第33条第2項第2号" in said
        assert all(s.get("language") == "ja-JP" for s in read.iter("Say"))
        other_key = ET.fromstring(client.post(action, {"Digits": "9"}).content)
        assert other_key.find("Hangup") is not None


class TestFees:
    def test_a_request_with_a_fee_waits_until_staff_confirm_the_payment(
        self, client, twilio, notice, operator, supervisor
    ):
        set_organisation(
            fee_purpose_notice=300, fee_payment_ja="ゆうちょ銀行 〇〇支店 普通 1234567"
        )
        recording_of(MOBILE, operator)
        prove(client, twilio, MOBILE)

        made = ask(client, "purpose_notice")
        receipt = client.get(reverse("portal:sent")).content.decode()

        assert (made.status, made.fee_yen) == ("awaiting_fee", 300)
        assert "300 円の手数料" in receipt and "ゆうちょ銀行 〇〇支店" in receipt
        page = decide(client, supervisor, made, "approve").content.decode()
        assert "手数料の支払いがまだ確認されていません" in page
        made.refresh_from_db()
        assert made.status == "awaiting_fee" and not DecisionNotice.objects.exists()

        decide(client, supervisor, made, "confirm_fee")
        made.refresh_from_db()
        assert (made.status, made.fee_confirmed_by) == ("received", supervisor)
        confirmed = AccessEvent.objects.get(
            action=Action.REQUEST_DECIDED, detail__decision="fee_confirmed"
        )
        assert confirmed.detail == {
            "request": made.reference,
            "decision": "fee_confirmed",
            "fee_yen": 300,
        }

        decide(client, supervisor, made, "approve")
        made.refresh_from_db()
        assert made.status == "done" and made.decision_notice.decision == "granted"

    def test_without_payment_instructions_the_receipt_says_we_will_contact_you(
        self, client, twilio, notice, operator
    ):
        set_organisation(fee_provision_records=500, fee_payment_ja="")
        recording_of(MOBILE, operator)
        prove(client, twilio, MOBILE)

        ask(client, "provision_records")

        assert "担当者からご連絡します" in client.get(reverse("portal:sent")).content.decode()

    def test_a_free_kind_is_received_at_once(self, client, twilio, notice, operator):
        set_organisation(fee_purpose_notice=300)
        recording_of(MOBILE, operator)
        prove(client, twilio, MOBILE)

        made = ask(client, "stop_provision")  # art. 38 allows no fee for it

        assert (made.status, made.fee_yen) == ("received", 0)
        assert "手数料" not in client.get(reverse("portal:sent")).content.decode()


class TestTheTwoWeekMark:
    def test_the_queue_shows_the_day_two_weeks_after_receipt_in_red_once_passed(
        self, client, asked, supervisor
    ):
        received = timezone.now() - timedelta(days=15)
        CustomerRequest.objects.filter(pk=asked.pk).update(created_at=received)
        client.force_login(supervisor)

        page = client.get(QUEUE).content.decode()

        mark = timezone.localtime(received + timedelta(days=14)).strftime("%Y-%m-%d")
        assert re.search(rf'<strong class="overdue">{mark} · 2週間経過</strong>', page)
        assert "2週間（第39条）" in page

    def test_not_in_red_before_two_weeks_or_once_answered(self, client, asked, supervisor):
        client.force_login(supervisor)
        mark = timezone.localtime(asked.created_at + timedelta(days=14)).strftime("%Y-%m-%d")
        page = client.get(QUEUE).content.decode()
        assert mark in page and "2週間経過" not in page

        CustomerRequest.objects.filter(pk=asked.pk).update(
            created_at=timezone.now() - timedelta(days=20)
        )
        decide(client, supervisor, asked, "approve")
        assert "2週間経過" not in client.get(QUEUE).content.decode()
