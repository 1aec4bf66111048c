"""A caller answered by phone (a landline) who asked for a copy as a file gets it from "your
calls": they prove the number again, and the page lists the recordings their granted requests
let them hear or download. Those links are served as the token links are (the same play
counting, audit trail, limits and headers), authorised by the proven number instead of a
token; another number's link, an expired one or a used-up one is not found."""

import io
import re
import secrets
import zipfile
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from audit import services as audit
from audit.models import AccessEvent
from contactcenter.roles import SUPERVISOR
from portal import requests
from portal.models import CustomerRequest, ListeningLink
from recordings import access

from .factories import PurposeFactory, UserFactory, published_notice
from .helpers.portal import find_call, find_call_in_page, prove, sent_code
from .helpers.second_factor import VerifiedClient
from .helpers.staff import acknowledged_operator
from .test_error_pages import assert_japanese_page
from .test_playback import AUDIO
from .test_portal_landline import LANDLINE, MOBILE, recording_of, spoken
from .test_portal_requests import decide

pytestmark = pytest.mark.django_db

Action = AccessEvent.Action
MINE = reverse("portal:mine")
SOMEONE_ELSE = "+81612345678"  # 06-1234-5678, Osaka


@pytest.fixture(autouse=True)
def _fresh_limits(portal_codes):
    """Codes through the Twilio emulator, and the portal's limits fresh (conftest)."""


def ask(client, recording, kind, copy_format=""):
    find_call(client, recording.call)
    answer = client.post(
        MINE, {"kind": kind, "calls": [str(recording.call.pk)], "copy_format": copy_format}
    )
    assert answer["Location"] == reverse("portal:sent")
    return CustomerRequest.objects.get(kind=kind)


def granted(twilio, supervisor, recording, *, number=LANDLINE, channel="call", **asked):
    """A request asked from a browser that proved ``number`` and granted by a supervisor;
    the caller then comes back in a new browser and proves the number again."""
    asking = Client()
    prove(asking, twilio, number, channel)
    made = ask(asking, recording, **asked)
    decide(VerifiedClient(), supervisor, made, "approve")
    made.refresh_from_db()
    back = Client()
    prove(back, twilio, number, channel)
    return made, back


def other_numbers_link(operator, **fields):
    """A granted request's live link to a recording of SOMEONE_ELSE's call."""
    recording = recording_of(SOMEONE_ELSE, operator)
    made = CustomerRequest.objects.create(
        phone_number=SOMEONE_ELSE,
        kind=CustomerRequest.Kind.COPY,
        copy_format=CustomerRequest.CopyFormat.FILE,
        due_at=timezone.now() + timedelta(days=7),
        status=CustomerRequest.Status.DONE,
        **fields,
    )
    return ListeningLink.objects.create(
        request=made,
        recording=recording,
        token_hash=requests.token_hash(secrets.token_urlsafe(24)),
        expires_at=timezone.now() + timedelta(hours=48),
        max_plays=3,
    )


def disclosures():
    return AccessEvent.objects.filter(action__in=[Action.PLAYBACK, Action.REFUSED]).order_by("seq")


def test_the_answer_call_of_a_file_copy_says_where_to_get_the_file(
    twilio, notice, operator, supervisor
):
    recording = recording_of(LANDLINE, operator)
    asking = Client()
    prove(asking, twilio, LANDLINE, "call")
    made = ask(asking, recording, "copy", "file")
    receipt = asking.get(reverse("portal:sent")).content.decode()
    calls_before = len(twilio.state.outbound_calls)

    decide(VerifiedClient(), supervisor, made, "approve")

    assert "お電話" in receipt
    assert twilio.state.messages == []
    [answer] = twilio.state.outbound_calls[calls_before:]
    text, plays = spoken(answer["twiml"])
    assert "承認しました" in text
    assert "『お客様の通話』のページで、48時間ダウンロードできます" in text
    assert len(plays) == 1
    made.refresh_from_db()
    assert "「お客様の通話」のページで48時間ダウンロードできます" in made.decision_reason


def test_a_hearing_for_a_landline_does_not_speak_of_a_file(twilio, notice, operator, supervisor):
    recording = recording_of(LANDLINE, operator)
    asking = Client()
    prove(asking, twilio, LANDLINE, "call")
    made = ask(asking, recording, "hear")
    calls_before = len(twilio.state.outbound_calls)

    decide(VerifiedClient(), supervisor, made, "approve")

    [answer] = twilio.state.outbound_calls[calls_before:]
    assert "ダウンロード" not in spoken(answer["twiml"])[0]
    made.refresh_from_db()
    assert "ダウンロード" not in made.decision_reason


def test_the_landline_caller_downloads_the_file_from_your_calls(
    twilio, notice, operator, supervisor
):
    recording = recording_of(LANDLINE, operator)
    made, caller = granted(twilio, supervisor, recording, kind="copy", copy_format="file")
    link = made.links.get()
    assert link.plays == 1  # the answer call played it
    download_url = reverse("portal:own-link-copy", args=[link.pk])

    page = caller.get(MINE).content.decode()
    download = caller.get(download_url)

    assert made.reference in page
    assert "お聞きいただける録音・ダウンロードできる写し" in page
    assert "あと2回、再生またはダウンロードできます。" in page
    assert f'href="{download_url}"' in page
    assert f'href="{reverse("portal:own-link", args=[link.pk])}"' in page
    assert download.status_code == 200
    assert download["Content-Type"] == "application/zip"
    assert download["Content-Disposition"] == f'attachment; filename="{made.reference}.zip"'
    assert download["X-Content-Type-Options"] == "nosniff"
    assert "no-cache" in download["Cache-Control"]
    archive = zipfile.ZipFile(io.BytesIO(b"".join(download.streaming_content)))
    assert archive.read(f"{recording.sid}.wav") == AUDIO
    assert recording.plaintext_sha256 in archive.read(f"{made.reference}.txt").decode()
    link.refresh_from_db()
    assert link.plays == 2
    *_, event = disclosures()
    assert event.action == Action.PLAYBACK
    assert (event.recording_id, event.purpose) == (recording.pk, access.DISCLOSURE)
    assert event.actor_label == f"customer {LANDLINE}"
    assert event.detail == {"request": made.reference, "link": link.pk, "copy": True}
    assert audit.verify_chain().ok


def test_the_last_play_downloads_and_then_the_link_is_gone(twilio, notice, operator, supervisor):
    recording = recording_of(LANDLINE, operator)
    made, caller = granted(twilio, supervisor, recording, kind="copy", copy_format="file")
    link = made.links.get()
    download_url = reverse("portal:own-link-copy", args=[link.pk])

    answers = [caller.get(download_url) for _ in range(3)]

    assert [answer.status_code for answer in answers] == [200, 200, 404]
    assert_japanese_page(answers[-1], 404)
    link.refresh_from_db()
    assert link.plays == link.max_plays == 3
    assert disclosures().filter(action=Action.PLAYBACK, detail__copy=True).count() == 2
    assert reverse("portal:own-link", args=[link.pk]) not in caller.get(MINE).content.decode()
    assert_japanese_page(caller.get(reverse("portal:own-link", args=[link.pk])), 404)


def test_the_listening_page_from_your_calls_counts_a_play_when_the_audio_starts(
    twilio, notice, operator, supervisor
):
    recording = recording_of(LANDLINE, operator)
    made, caller = granted(twilio, supervisor, recording, kind="copy", copy_format="file")
    link = made.links.get()
    before = disclosures().count()

    page = caller.get(reverse("portal:own-link", args=[link.pk]))
    audio_url = reverse("portal:own-link-audio", args=[link.pk])
    first = caller.get(audio_url, HTTP_RANGE="bytes=0-99")
    rest = caller.get(audio_url, HTTP_RANGE="bytes=100-")

    text = page.content.decode()
    assert page.status_code == 200
    assert f'src="{audio_url}"' in text
    assert f'href="{reverse("portal:own-link-copy", args=[link.pk])}"' in text
    assert f'action="{reverse("portal:own-link-call", args=[link.pk])}"' in text
    assert (first.status_code, rest.status_code) == (206, 206)
    assert b"".join(first.streaming_content) + b"".join(rest.streaming_content) == AUDIO
    link.refresh_from_db()
    assert link.plays == 2  # the answer call's, and this one
    [event] = disclosures()[before:]
    assert event.action == Action.PLAYBACK
    assert event.detail == {"request": made.reference, "link": link.pk, "by_phone": False}


def test_listening_by_phone_from_your_calls_calls_the_proven_number(
    twilio, notice, operator, supervisor
):
    recording = recording_of(LANDLINE, operator)
    made, caller = granted(twilio, supervisor, recording, kind="hear")
    link = made.links.get()
    calls_before = len(twilio.state.outbound_calls)

    answer = caller.post(reverse("portal:own-link-call", args=[link.pk]))

    assert answer.status_code == 200
    assert "ただいまお電話しています" in answer.content.decode()
    [call] = twilio.state.outbound_calls[calls_before:]
    assert call["to"] == LANDLINE
    assert len(spoken(call["twiml"])[1]) == 1
    link.refresh_from_db()
    assert link.plays == 2


def test_another_numbers_link_is_not_found_and_not_listed(twilio, notice, operator, supervisor):
    recording = recording_of(LANDLINE, operator)
    _, caller = granted(twilio, supervisor, recording, kind="copy", copy_format="file")
    theirs = other_numbers_link(operator)
    before = disclosures().count()

    answers = [
        caller.get(reverse("portal:own-link", args=[theirs.pk])),
        caller.get(reverse("portal:own-link-audio", args=[theirs.pk])),
        caller.get(reverse("portal:own-link-copy", args=[theirs.pk])),
        caller.post(reverse("portal:own-link-call", args=[theirs.pk])),
    ]

    for answer in answers:
        assert_japanese_page(answer, 404)
    assert theirs.request.reference not in caller.get(MINE).content.decode()
    theirs.refresh_from_db()
    assert theirs.plays == 0
    assert disclosures().count() == before


def test_an_expired_link_is_not_found_and_not_listed(twilio, notice, operator, supervisor):
    recording = recording_of(LANDLINE, operator)
    made, caller = granted(twilio, supervisor, recording, kind="copy", copy_format="file")
    link = made.links.get()
    ListeningLink.objects.filter(pk=link.pk).update(expires_at=timezone.now())

    page = caller.get(reverse("portal:own-link", args=[link.pk]))
    download = caller.get(reverse("portal:own-link-copy", args=[link.pk]))

    assert_japanese_page(page, 404)
    assert_japanese_page(download, 404)
    assert reverse("portal:own-link", args=[link.pk]) not in caller.get(MINE).content.decode()
    link.refresh_from_db()
    assert link.plays == 1


def test_a_hearing_offers_no_download(twilio, notice, operator, supervisor):
    recording = recording_of(LANDLINE, operator)
    made, caller = granted(twilio, supervisor, recording, kind="hear")
    link = made.links.get()

    page = caller.get(MINE).content.decode()
    download = caller.get(reverse("portal:own-link-copy", args=[link.pk]))

    assert f'href="{reverse("portal:own-link", args=[link.pk])}"' in page
    assert "copy.zip" not in page
    assert_japanese_page(download, 404)
    link.refresh_from_db()
    assert link.plays == 1


def test_without_a_proven_number_nothing_is_served(twilio, notice, operator, supervisor):
    recording = recording_of(LANDLINE, operator)
    made, caller = granted(twilio, supervisor, recording, kind="copy", copy_format="file")
    link = made.links.get()
    caller.post(reverse("portal:leave"))

    page = caller.get(reverse("portal:own-link", args=[link.pk]))
    download = caller.get(reverse("portal:own-link-copy", args=[link.pk]))

    assert page["Location"] == reverse("portal:start")
    assert_japanese_page(download, 404)
    link.refresh_from_db()
    assert link.plays == 1


def test_an_sms_answered_callers_links_show_on_your_calls_too(twilio, notice, operator, supervisor):
    recording = recording_of(MOBILE, operator)
    made, caller = granted(
        twilio, supervisor, recording, number=MOBILE, channel="sms", kind="copy", copy_format="file"
    )
    link = made.links.get()
    assert "/requests/listen/" in twilio.state.messages[-2]["body"]  # the answer, by SMS
    assert "お客様の通話" not in made.decision_reason

    page = caller.get(MINE).content.decode()
    download = caller.get(reverse("portal:own-link-copy", args=[link.pk]))

    assert made.reference in page
    assert "あと3回、再生またはダウンロードできます。" in page
    assert download.status_code == 200
    assert zipfile.ZipFile(io.BytesIO(b"".join(download.streaming_content))).testzip() is None
    link.refresh_from_db()
    assert link.plays == 1


# --- in a real browser ---------------------------------------------------------------------


@pytest.fixture
def landline_recording(live_db):
    """A stored recording of a call from the landline, under a published notice (committed,
    for the live server)."""
    published_notice(purposes=[PurposeFactory(code="quality", name_ja="品質向上")])
    return recording_of(LANDLINE, acknowledged_operator("op-landline"))


def prove_in_browser(page, twilio):
    page.goto("/requests/")
    page.get_by_label("お電話をおかけになった電話番号").fill("03-1234-5678")
    page.get_by_role("radio", name="音声通話").check()
    page.get_by_role("button", name="コードを送る").click()
    expect(page).to_have_url(re.compile(r"/requests/verify/(#.*)?$"))
    page.get_by_label("6桁の確認コード").fill(sent_code(twilio, "call"))
    page.get_by_role("button", name="確認").click()
    expect(page).to_have_url(re.compile(r"/requests/mine/(#.*)?$"))


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_in_a_browser_a_landline_caller_downloads_the_copy_from_your_calls(
    page, twilio, landline_recording, tmp_path
):
    recording = landline_recording
    started = timezone.localtime(recording.call.started_at).strftime("%Y-%m-%d %H:%M")

    # The caller proves the landline by a voice call and asks for a copy as a file.
    prove_in_browser(page, twilio)
    find_call_in_page(page, recording.call)
    page.get_by_role("group", name="対象の通話").get_by_label(started).check()
    page.get_by_role("radio", name="写しがほしい").check()
    page.get_by_role("radio", name="ダウンロードできる音声ファイル（通話と同意の記録つき）").check()
    page.get_by_role("button", name="請求を送る").click()
    expect(page).to_have_url(re.compile(r"/requests/sent/(#.*)?$"))
    expect(page.locator("main")).to_contain_text("日本語のお電話でご回答します")
    made = CustomerRequest.objects.get()
    assert (made.kind, made.copy_format, made.answer_by) == ("copy", "file", "call")

    # It is granted; the answer call plays the recording and says where the file is.
    requests.approve(made, by=UserFactory(username="supervisor-l", roles=[SUPERVISOR]))
    assert "『お客様の通話』のページで" in spoken(twilio.state.outbound_calls[-1]["twiml"])[0]
    assert twilio.state.messages == []

    # Later the caller comes back, proves the number again and downloads the file.
    page.get_by_role("link", name="通話の一覧に戻る").click()
    page.get_by_role("button", name="終了").click()
    expect(page).to_have_url(re.compile(r"/requests/(#.*)?$"))
    prove_in_browser(page, twilio)
    granted_section = page.locator("section.card", has_text=made.reference)
    expect(granted_section).to_contain_text(started)
    expect(granted_section).to_contain_text("あと2回、再生またはダウンロードできます。")
    with page.expect_download() as downloading:
        granted_section.get_by_role("link", name="写しをダウンロード").click()
    download = downloading.value
    assert download.suggested_filename == f"{made.reference}.zip"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)

    with zipfile.ZipFile(saved) as archive:
        assert archive.read(f"{recording.sid}.wav") == AUDIO
        assert "同意" in archive.read(f"{made.reference}.txt").decode()
    link = made.links.get()
    assert link.plays == 2
    event = AccessEvent.objects.filter(action=Action.PLAYBACK).latest("seq")
    assert event.detail == {"request": made.reference, "link": link.pk, "copy": True}
    assert event.actor_label == f"customer {LANDLINE}"
    assert audit.verify_chain().ok

    # The page now counts one use fewer.
    page.reload()
    expect(granted_section).to_contain_text("あと1回、再生またはダウンロードできます。")
