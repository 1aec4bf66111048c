"""In a real browser, the whole customer journey of a request to hear a recording: the caller
proves their number with a code sent by SMS, finds their call and asks to hear it; a
supervisor grants the request in the admin; the caller opens the link the SMS brings, the
recording plays without a download control, and every step is in the access audit trail."""

import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from audit import services as audit
from audit.models import AccessEvent
from contactcenter.roles import SUPERVISOR
from portal.models import CustomerRequest, ListeningLink
from twilio_emulator.server import synthetic_wav

from .factories import PurposeFactory, UserFactory, published_notice
from .helpers.browser import log_in
from .helpers.portal import find_call_in_page
from .helpers.staff import acknowledged_operator
from .test_playback import stored_recording

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

Action = AccessEvent.Action
NUMBER = "+819011112222"
AS_TYPED = "090-1111-2222"
PLAYING_TIMEOUT = 8_000  # ms for the audio clock to move once playback has started


@pytest.fixture(autouse=True)
def _fresh_limits(portal_codes):
    """Codes through the Twilio emulator, and the portal's limits fresh (conftest)."""


@pytest.fixture
def notice(live_db):
    return published_notice(
        purposes=[PurposeFactory(code="quality", name_ja="品質向上", retention_days=30)]
    )


@pytest.fixture
def recording(live_db, notice):
    """A stored 20-second recording of a call from the customer's number."""
    operator = acknowledged_operator("op-p")
    recording = stored_recording(operator, audio=synthetic_wav(20))
    customer = recording.call.customer
    customer.phone_number = NUMBER
    customer.save()
    return recording


@pytest.fixture
def supervisor(live_db):
    return UserFactory(username="supervisor-p", roles=[SUPERVISOR])


@pytest.fixture
def supervisor_page(chromium, live_server):
    """A browser context of its own: the supervisor's session never meets the customer's."""
    context = chromium.new_context(
        base_url=live_server.url, viewport={"width": 1280, "height": 900}
    )
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


def sms_to(twilio, number, count):
    """The SMS sent to ``number``, once there are ``count`` of them."""
    messages = [message for message in twilio.state.messages if message["to"] == number]
    assert len(messages) == count, twilio.state.messages
    return messages


def path_of(url):
    """``/requests/listen/<token>/`` of a link whose host is PUBLIC_BASE_URL."""
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


def test_a_caller_asks_to_hear_their_call_a_supervisor_grants_it_and_the_caller_listens(
    page, supervisor_page, twilio, recording, supervisor
):
    call = recording.call
    started = timezone.localtime(call.started_at).strftime("%Y-%m-%d %H:%M")

    # The caller proves the number with the code sent by SMS.
    page.goto("/requests/")
    expect(page.locator("html")).to_have_attribute("lang", "ja")
    page.get_by_label("お電話をおかけになった電話番号").fill(AS_TYPED)
    page.get_by_role("radio", name="SMS").check()
    page.get_by_role("button", name="コードを送る").click()
    expect(page).to_have_url(re.compile(r"/requests/verify/(#.*)?$"))
    [code_sms] = sms_to(twilio, NUMBER, 1)
    code = re.search(r"\b(\d{6})\b", code_sms["body"]).group(1)
    page.get_by_label("6桁の確認コード").fill(code)
    page.get_by_role("button", name="確認").click()

    # No call is listed until they say when they called; then theirs is, and they ask to
    # hear it.
    expect(page).to_have_url(re.compile(r"/requests/mine/(#.*)?$"))
    expect(page.locator("table tbody tr")).to_have_count(0)
    find_call_in_page(page, call)
    expect(page.locator("table tbody tr")).to_have_count(1)
    expect(page.locator("table tbody tr")).to_contain_text(started)
    page.get_by_role("group", name="対象の通話").get_by_label(started).check()
    page.get_by_role("radio", name="録音を聞きたい").check()
    page.get_by_role("button", name="請求を送る").click()

    expect(page).to_have_url(re.compile(r"/requests/sent/(#.*)?$"))
    made = CustomerRequest.objects.get()
    assert (made.phone_number, made.kind, made.status) == (NUMBER, "hear", "received")
    assert list(made.calls.all()) == [call]
    assert re.fullmatch(r"RQ-[A-Z0-9]{8}", made.reference)
    expect(page.get_by_role("status")).to_contain_text(made.reference)

    # A supervisor grants it from the queue in the admin.
    log_in(supervisor_page, "supervisor-p", "pass")
    expect(supervisor_page).to_have_url(re.compile(r"/admin/$"))
    supervisor_page.goto("/admin/portal/customerrequest/")
    row = supervisor_page.locator("#result_list tbody tr", has_text=made.reference)
    expect(row).to_have_count(1)
    row.locator("input[name=_selected_action]").check()
    supervisor_page.locator("select[name=action]").select_option(label="請求に応じて対応する…")
    supervisor_page.get_by_role("button", name="実行").click()
    expect(supervisor_page.locator("#content")).to_contain_text(made.reference)
    supervisor_page.get_by_role("button", name="請求に応じて対応する").click()
    expect(supervisor_page.locator(".messagelist")).to_contain_text(made.reference)

    made.refresh_from_db()
    assert (made.status, made.decided_by) == ("done", supervisor)
    assert ListeningLink.objects.get().recording == recording

    # The SMS brings the link; the caller opens it and listens, without a download control.
    link_sms = sms_to(twilio, NUMBER, 2)[-1]
    assert made.reference in link_sms["body"]
    link = re.search(r"https?://\S+/requests/listen/[^/\s]+/", link_sms["body"]).group(0)
    audio_responses = []
    page.on(
        "response",
        lambda response: (
            audio_responses.append(response) if response.url.endswith("/audio/") else None
        ),
    )
    page.goto(path_of(link))
    audio = page.locator("audio.portal-audio")
    expect(audio).to_have_count(1)
    assert "nodownload" in audio.get_attribute("controlslist")
    assert page.evaluate(
        "document.querySelector('audio.portal-audio').controlsList.contains('nodownload')"
    )
    audio.evaluate("audio => audio.play()")
    page.wait_for_function(
        """() => {
            const audio = document.querySelector('audio.portal-audio');
            return !audio.paused && audio.currentTime > 1;
        }""",
        timeout=PLAYING_TIMEOUT,
    )
    assert not page.evaluate("document.querySelector('audio.portal-audio').error")
    audio.evaluate("audio => audio.pause()")
    assert audio_responses
    assert {response.status for response in audio_responses} <= {200, 206}
    assert audio_responses[0].headers["content-type"] == "audio/wav"
    assert audio.get_attribute("src") == path_of(link) + "audio/"

    # The whole story is in the access audit trail, and the trail is intact.
    received = AccessEvent.objects.get(action=Action.REQUEST_RECEIVED)
    assert received.detail["request"] == made.reference
    assert received.detail["calls"] == [call.sid]
    assert received.actor_label == f"customer {NUMBER}"
    decided = AccessEvent.objects.get(action=Action.REQUEST_DECIDED)
    assert decided.detail["request"] == made.reference
    assert decided.detail["links"] == [recording.sid]
    assert decided.actor == supervisor
    playback = AccessEvent.objects.get(action=Action.PLAYBACK, recording_id=recording.pk)
    assert playback.purpose == "disclosure"
    assert playback.actor_label == f"customer {NUMBER}"
    assert received.seq < decided.seq < playback.seq
    assert audit.verify_chain().ok
