"""Issue 16 (deliver 4): the request kinds beyond hearing, copying, deleting and withdrawing —
the purposes of use (art. 32(2)), correction (34), stopping third-party provision (35(3)),
the cross-border information (28(3)), the records of provision (33(5)) and 利用停止 that keeps
the recording sealed — each made on the portal, granted in the queue, and answered with a
written decision; by SMS for a mobile, by a voice call (TwiML) for a landline."""

import re
import xml.etree.ElementTree as ET
from datetime import date

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import AccessEvent
from contactcenter.models import Customer
from portal.models import CustomerRequest, DecisionNotice
from privacy.models import CrossBorderRecipient
from recordings import provision
from recordings.models import ProvisionRecord, Recording

from .helpers.portal import find_call, prove
from .test_playback import start, stored_recording
from .test_portal_requests import decide

pytestmark = pytest.mark.django_db

Action = AccessEvent.Action
MOBILE = "+819011112222"
LANDLINE = "+81312345678"
MINE = reverse("portal:mine")


@pytest.fixture(autouse=True)
def _fresh_limits(portal_codes):
    """Codes through the Twilio emulator, and the portal's limits fresh (conftest)."""


def recording_of(number, operator):
    recording = stored_recording(operator)
    customer = recording.call.customer
    customer.phone_number = number
    customer.save()
    return recording


def ask(client, kind, *, calls=(), **fields):
    for call in calls:
        find_call(client, call)
    response = client.post(MINE, {"kind": kind, "calls": [str(c.pk) for c in calls], **fields})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert response["Location"] == reverse("portal:sent")
    return CustomerRequest.objects.get(kind=kind)


def grant(client, supervisor, made, reason="本人確認済み"):
    page = decide(client, supervisor, made, "approve", reason=reason)
    assert page.status_code == 200
    client.logout()
    made.refresh_from_db()
    assert made.status == "done", [str(m) for m in page.context["messages"]]
    return made.decision_notice


def notice_page(client, twilio, number=MOBILE):
    """The written decision, from the link of the last SMS to ``number``."""
    body = [m for m in twilio.state.messages if m["to"] == number][-1]["body"]
    url = re.search(r"https?://\S+/requests/decision/[^/\s]+/", body).group(0)
    response = client.get("/" + url.split("://", 1)[1].split("/", 1)[1])
    assert response.status_code == 200
    return response.content.decode()


def answer_call(twilio, before):
    [call] = twilio.state.outbound_calls[before:]
    assert call["to"] == LANDLINE
    root = ET.fromstring(call["twiml"])
    assert all(say.get("language") == "ja-JP" for say in root.iter("Say"))
    return root


def read_out(client, settings, root):
    """Press 1 in the answer call: what Twilio is told to say then."""
    gather = root.find("Gather")
    assert gather is not None and gather.get("numDigits") == "1"
    assert "1を押して" in gather.find("Say").text
    action = gather.get("action")
    assert action.startswith(settings.PUBLIC_BASE_URL + "/requests/decision/")
    response = client.post(action[len(settings.PUBLIC_BASE_URL) :], {"Digits": "1"})
    assert response.status_code == 200
    said = ET.fromstring(response.content)
    return "".join(say.text for say in said.iter("Say"))


class TestPurposes:
    def test_a_mobile_is_told_the_purposes_in_a_written_decision(
        self, client, twilio, notice, operator, supervisor
    ):
        recording_of(MOBILE, operator)
        prove(client, twilio, MOBILE)

        made = ask(client, "purpose_notice")
        assert list(made.calls.all()) == []  # about the person, not a call
        notice_ = grant(client, supervisor, made)

        assert notice_.decision == "granted"
        assert "第32条第2項" in notice_.legal_ground
        assert "品質向上" in notice_.answer and "30日" in notice_.answer
        assert "研修" in notice_.answer and "90日" in notice_.answer
        page = notice_page(client, twilio)
        assert made.reference in page and "品質向上" in page and "本人確認済み" in page

    def test_a_landline_hears_the_decision_and_can_have_the_notice_read(
        self, client, twilio, notice, operator, supervisor, settings
    ):
        recording_of(LANDLINE, operator)
        prove(client, twilio, LANDLINE, "call")
        made = ask(client, "purpose_notice")
        before = len(twilio.state.outbound_calls)

        grant(client, supervisor, made)

        assert twilio.state.messages == []
        root = answer_call(twilio, before)
        said = "".join(say.text for say in root.findall("Say"))
        assert "利用目的をお知らせします" in said
        read = read_out(client, settings, root)
        assert "品質向上" in read and "第32条第2項" in read


class TestCorrection:
    def test_the_name_is_corrected_in_the_customer_record(
        self, client, twilio, notice, operator, supervisor
    ):
        recording = recording_of(MOBILE, operator)
        Customer.objects.filter(pk=recording.call.customer_id).update(name="山田太郎")
        prove(client, twilio, MOBILE)

        made = ask(
            client,
            "correct",
            correction_target="name",
            correction_wrong="山田太郎",
            correction_right="山田太朗",
        )
        notice_ = grant(client, supervisor, made)

        assert Customer.objects.get(phone_number=MOBILE).name == "山田太朗"
        assert "山田太朗" in notice_.answer and "第34条" in notice_.legal_ground
        decided = AccessEvent.objects.get(action=Action.REQUEST_DECIDED)
        assert decided.detail["corrected"] == "customer_name"
        assert "山田太朗" in notice_page(client, twilio)

    def test_a_correction_of_a_call_is_added_beside_its_details_on_the_call_page(
        self, client, twilio, notice, operator, supervisor
    ):
        recording = recording_of(MOBILE, operator)
        call = recording.call
        started = call.started_at
        prove(client, twilio, MOBILE)

        made = ask(
            client,
            "correct",
            calls=[call],
            correction_target="call",
            correction_wrong="言語が英語になっている",
            correction_right="日本語で話しました",
        )
        notice_ = grant(client, supervisor, made)

        call.refresh_from_db()
        assert call.started_at == started  # what was recorded stays
        assert "日本語で話しました" in notice_.answer
        client.force_login(supervisor)
        page = client.get(reverse("admin:contactcenter_call_change", args=[call.pk]))
        assert page.status_code == 200
        body = page.content.decode()
        assert "お客様による訂正" in body and "日本語で話しました" in body
        assert made.reference in body

    def test_a_correction_says_what_is_right(self, client, twilio, notice, operator):
        recording_of(MOBILE, operator)
        prove(client, twilio, MOBILE)

        response = client.post(MINE, {"kind": "correct", "correction_target": "name"})

        assert response.status_code == 400
        assert not CustomerRequest.objects.exists()

    def test_a_correction_found_unfounded_is_refused_with_its_ground(
        self, client, twilio, notice, operator, supervisor
    ):
        recording_of(MOBILE, operator)
        prove(client, twilio, MOBILE)
        made = ask(client, "correct", correction_target="name", correction_right="別人")

        decide(client, supervisor, made, "refuse", ground="accurate", reason="登録どおりでした")

        notice_ = DecisionNotice.objects.get(request=made)
        assert notice_.decision == "refused"
        assert "第34条第2項" in notice_.legal_ground
        assert notice_.reasons == "登録どおりでした"
        assert Customer.objects.get(phone_number=MOBILE).name == ""


class TestStoppingProvision:
    def test_once_granted_no_recording_of_the_customer_can_be_provided(
        self, client, twilio, notice, operator, supervisor
    ):
        recording = recording_of(LANDLINE, operator)
        prove(client, twilio, LANDLINE, "call")
        made = ask(client, "stop_provision")
        before = len(twilio.state.outbound_calls)

        grant(client, supervisor, made)

        assert Customer.objects.get(phone_number=LANDLINE).provision_stopped_at is not None
        said = "".join(s.text for s in answer_call(twilio, before).findall("Say"))
        assert "第三者に提供することを停止しました" in said
        with pytest.raises(provision.NotAllowed):
            provision.provide(
                recording,
                by=supervisor,
                recipient="弁護士 佐藤",
                recipient_kind="lawyer",
                recipient_address="東京都千代田区1-1",
                items=["audio"],
                basis="entrustment",
            )
        assert not ProvisionRecord.objects.exists()


def handed_to_a_lawyer(recording, supervisor):
    return provision.provide(
        recording,
        by=supervisor,
        recipient="弁護士 佐藤一郎",
        recipient_kind="lawyer",
        recipient_address="東京都千代田区丸の内1-1",
        items=["audio", "call"],
        basis="consent",
        consent_method="recorded_call",
        consent_obtained_at=timezone.now(),
        consent_statement="通話中に本人が同意（監督者が確認）",
    )


class TestProvisionRecords:
    def test_the_records_about_the_person_are_disclosed_and_no_one_elses(
        self, client, twilio, notice, operator, supervisor
    ):
        recording = recording_of(MOBILE, operator)
        other = stored_recording(operator)
        handed_to_a_lawyer(recording, supervisor)
        provision.provide(
            other,
            by=supervisor,
            recipient="損保ジャパン",
            recipient_kind="insurer",
            recipient_address="東京都新宿区",
            items=["audio"],
            basis="entrustment",
        )
        prove(client, twilio, MOBILE)

        made = ask(client, "provision_records")
        notice_ = grant(client, supervisor, made)

        assert "弁護士 佐藤一郎" in notice_.answer and "損保" not in notice_.answer
        assert "第33条第5項" in notice_.legal_ground
        assert (
            AccessEvent.objects.get(action=Action.REQUEST_DECIDED).detail["provision_records"] == 1
        )
        assert "弁護士 佐藤一郎" in notice_page(client, twilio)

    def test_a_landline_hears_the_records_read_out(
        self, client, twilio, notice, operator, supervisor, settings
    ):
        recording = recording_of(LANDLINE, operator)
        handed_to_a_lawyer(recording, supervisor)
        prove(client, twilio, LANDLINE, "call")
        made = ask(client, "provision_records")
        before = len(twilio.state.outbound_calls)

        grant(client, supervisor, made)

        root = answer_call(twilio, before)
        assert "記録は1件です" in "".join(s.text for s in root.findall("Say"))
        assert "弁護士 佐藤一郎" in read_out(client, settings, root)


class TestCrossBorder:
    def test_the_register_is_the_answer(self, client, twilio, notice, operator, supervisor):
        CrossBorderRecipient.objects.create(
            recipient="Twilio Inc.",
            country_ja="米国",
            services_ja="音声通話・録音・SMS",
            measures_ja="データ処理契約（DPA）を締結し、ISO/IEC 27001 の認証を確認",
            country_regime_ja="米国には包括的な連邦個人情報保護法はない",
            last_checked_on=date(2026, 4, 1),
            next_check_on=date(2027, 4, 1),
        )
        recording_of(MOBILE, operator)
        prove(client, twilio, MOBILE)

        made = ask(client, "cross_border")
        notice_ = grant(client, supervisor, made)

        for expected in ("Twilio Inc.", "米国", "DPA", "2027-04-01", "連邦個人情報保護法"):
            assert expected in notice_.answer
        assert "第28条第3項" in notice_.legal_ground
        assert "Twilio Inc." in notice_page(client, twilio)


class TestSuspensionThatKeeps:
    def test_sealed_recordings_are_kept_and_refused_to_staff_but_heard_by_the_caller(
        self, client, twilio, notice, operator, supervisor
    ):
        recording = recording_of(MOBILE, operator)
        prove(client, twilio, MOBILE)

        made = ask(client, "seal", calls=[recording.call])
        notice_ = grant(client, supervisor, made)

        recording.refresh_from_db()
        assert recording.status == Recording.Status.STORED  # not purged
        assert recording.sealed_at is not None
        assert recording.blob_name and recording.wrapped_key
        assert "第35条第1項" in notice_.legal_ground
        client.force_login(supervisor)
        refused = start(client, recording, "quality")
        assert refused.status_code == 403
        assert AccessEvent.objects.filter(action=Action.REFUSED, recording_id=recording.pk).exists()
        client.logout()
        # The caller may still hear their own sealed recording.
        prove(client, twilio, MOBILE)
        find_call(client, recording.call)
        client.post(MINE, {"kind": "hear", "calls": [str(recording.call.pk)]})
        hearing = CustomerRequest.objects.get(kind="hear")
        grant(client, supervisor, hearing)
        assert hearing.links.get().recording == recording

    def test_deleting_still_purges(self, client, twilio, notice, operator, supervisor):
        recording = recording_of(MOBILE, operator)
        prove(client, twilio, MOBILE)

        grant(client, supervisor, ask(client, "delete", calls=[recording.call]))

        recording.refresh_from_db()
        assert recording.status == Recording.Status.PURGED


@pytest.mark.parametrize(
    ("kind", "fields", "gist", "article"),
    [
        ("purpose_notice", {}, "利用目的をお知らせします", "第32条第2項"),
        (
            "correct",
            {"correction_target": "name", "correction_right": "鈴木花子"},
            "訂正しました",
            "第34条",
        ),
        ("stop_provision", {}, "停止しました", "第35条第3項"),
        ("cross_border", {}, "外国にある第三者", "第28条第3項"),
        ("provision_records", {}, "第三者提供の記録を開示します", "第33条第5項"),
        ("seal", {"about_the_call": True}, "封印して保管", "第35条第1項"),
    ],
)
def test_every_new_kind_is_answered_to_a_landline_by_a_call_that_reads_the_notice(
    client, twilio, notice, operator, supervisor, settings, kind, fields, gist, article
):
    """A landline proven by a voice call asks; the answer is a call in Japanese saying the
    decision, and pressing 1 reads the whole written decision."""
    recording = recording_of(LANDLINE, operator)
    prove(client, twilio, LANDLINE, "call")
    calls = [recording.call] if fields.pop("about_the_call", False) else []
    made = ask(client, kind, calls=calls, **fields)
    before = len(twilio.state.outbound_calls)

    notice_ = grant(client, supervisor, made)

    assert twilio.state.messages == []
    root = answer_call(twilio, before)
    assert gist in "".join(say.text for say in root.findall("Say"))
    read = read_out(client, settings, root)
    assert article in read and made.reference in read
    assert notice_.text_ja.splitlines()[0] in read
