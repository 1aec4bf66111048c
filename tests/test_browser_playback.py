"""In a real browser: a supervisor listens to a call for a purpose and seeks in it (HTTP
Range), and finds the listening in the access audit trail; a purpose whose window has closed
is refused in Japanese; an operator reviews their own call for training and nobody else's."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from audit.models import AccessEvent
from contactcenter.roles import SUPERVISOR
from recordings.models import RecordingPurpose
from twilio_emulator.server import synthetic_wav

from .factories import UserFactory, recording_notice
from .helpers.browser import log_in
from .helpers.staff import acknowledged_operator
from .test_playback import stored_recording

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

Action = AccessEvent.Action
PLAYING_TIMEOUT = 8_000  # ms for the audio clock to move once playback has started


@pytest.fixture
def notice(live_db):
    return recording_notice()


@pytest.fixture
def operator(live_db, notice):
    return acknowledged_operator("op-b")


@pytest.fixture
def supervisor(live_db):
    return UserFactory(username="supervisor-b", roles=[SUPERVISOR])


def long_wav(seconds):
    """A two-channel WAV of ``seconds``: one generated second, repeated."""
    one = synthetic_wav(1)
    samples = one[44:]
    size = len(samples) * seconds
    header = bytearray(one[:44])
    header[4:8] = (36 + size).to_bytes(4, "little")
    header[40:44] = size.to_bytes(4, "little")
    return bytes(header) + samples * seconds


def audio_time(page):
    return page.evaluate("document.querySelector('.recording-player .player-audio').currentTime")


def wait_until_playing_past(page, seconds):
    """Wait until the player's audio is playing and its clock is past ``seconds``."""
    page.wait_for_function(
        """(seconds) => {
            const audio = document.querySelector('.recording-player .player-audio');
            return !audio.paused && audio.currentTime > seconds;
        }""",
        arg=seconds,
        timeout=PLAYING_TIMEOUT,
    )


def player_page(recording, where):
    """Where a supervisor meets the player: the call's page in the admin, or the recording's
    training review page (supervisors give feedback there)."""
    if where == "admin call page":
        return f"/admin/contactcenter/call/{recording.call.pk}/change/"
    return f"/operator/training/{recording.pk}/"


SUPERVISOR_PAGES = pytest.mark.parametrize("where", ["admin call page", "training review page"])


def choose_purpose(player, name):
    """Choose the purpose whose option shows ``name`` (options read 「研修（…まで）」)."""
    select = player.locator("select[name=purpose]")
    value = select.locator("option", has_text=name).get_attribute("value")
    select.select_option(value)
    return value


@SUPERVISOR_PAGES
def test_a_supervisor_plays_seeks_and_finds_the_listening_in_the_audit_trail(
    page, operator, supervisor, where
):
    # Ten minutes (19.2 MB): more than the browser buffers, so a seek near the end has to
    # fetch from the middle of the file with a new Range request.
    recording = stored_recording(operator, audio=long_wav(10 * 60))
    audio_responses = []
    page.on(
        "response",
        lambda response: (
            audio_responses.append(response) if "/recordings/audio/" in response.url else None
        ),
    )
    starts = []
    page.on(
        "request",
        lambda request: starts.append(request) if "/playback/" in request.url else None,
    )

    log_in(page, "supervisor-b", "pass")
    expect(page).to_have_url(re.compile(r"/admin/$"))
    page.goto(player_page(recording, where))
    player = page.locator(".recording-player")
    assert choose_purpose(player, "研修") == "training"
    player.get_by_role("button", name="再生").click()

    wait_until_playing_past(page, 0.5)
    expect(player.locator(".player-error")).to_be_hidden()
    assert [request.method for request in starts] == ["POST"]
    assert starts[0].url.endswith(f"/recordings/{recording.pk}/playback/")

    page.evaluate("document.querySelector('.recording-player .player-audio').currentTime = 500")
    wait_until_playing_past(page, 500.5)
    assert 500 <= audio_time(page) < 510

    ranged = [
        response
        for response in audio_responses
        if "range" in response.request.all_headers() and response.status == 206
    ]
    assert ranged, [(r.request.all_headers().get("range"), r.status) for r in audio_responses]
    offsets = [
        int(re.match(r"bytes=(\d+)-", response.request.all_headers()["range"]).group(1))
        for response in ranged
    ]
    assert max(offsets) > 400 * 32_000, offsets  # served from the middle of the recording
    assert [r.status for r in audio_responses] == [
        206 if "range" in r.request.all_headers() else 200 for r in audio_responses
    ]
    assert ranged[0].headers["content-type"] == "audio/wav"
    page.evaluate("document.querySelector('.recording-player .player-audio').pause()")

    page.goto("/admin/audit/accessevent/")
    # The list shows a shortened SID with the whole one in its title, and the purpose's name.
    row = page.locator("#result_list tbody tr", has=page.locator(f'[title="{recording.sid}"]'))
    expect(row).to_have_count(1)
    expect(row).to_contain_text("研修")
    expect(row).to_contain_text("supervisor-b")
    playbacks = AccessEvent.objects.filter(action=Action.PLAYBACK, recording_id=recording.pk)
    assert [(event.purpose, event.actor) for event in playbacks] == [("training", supervisor)]
    assert not AccessEvent.objects.filter(action=Action.REFUSED).exists()


@SUPERVISOR_PAGES
def test_a_purpose_whose_window_closed_after_the_page_loaded_is_refused_in_japanese(
    page, operator, supervisor, where
):
    recording = stored_recording(operator)

    log_in(page, "supervisor-b", "pass")
    expect(page).to_have_url(re.compile(r"/admin/$"))
    page.goto(player_page(recording, where))
    player = page.locator(".recording-player")
    expect(player.locator("select[name=purpose] option", has_text="品質向上")).to_have_count(1)
    error = player.locator(".player-error")
    expect(error).to_be_hidden()

    RecordingPurpose.objects.filter(recording=recording, purpose__code="quality").update(
        usable_until=timezone.now() - timedelta(minutes=1)
    )
    assert choose_purpose(player, "品質向上") == "quality"
    player.get_by_role("button", name="再生").click()

    expect(error).to_be_visible()
    expect(error).to_contain_text("終了")
    expect(error).to_contain_text(str(timezone.localdate().year))
    assert page.evaluate(
        "!document.querySelector('.recording-player .player-audio').getAttribute('src')"
    )
    refusal = AccessEvent.objects.get(action=Action.REFUSED, recording_id=recording.pk)
    assert refusal.purpose == "quality"
    assert refusal.actor == supervisor
    assert refusal.detail["reason"] == "window_closed"
    assert not AccessEvent.objects.filter(action=Action.PLAYBACK).exists()


def test_an_operator_reviews_their_own_call_for_training_and_nobody_elses(page, operator):
    own = stored_recording(operator)
    others = stored_recording(acknowledged_operator("op-c"))

    log_in(page, "op-b", "pass")
    expect(page).to_have_url(re.compile(r"/admin/$"))
    page.goto("/operator/training/")
    expect(page.get_by_role("heading", level=1)).to_have_text("研修用レビュー")
    expect(page.locator(f'a[href="/operator/training/{own.pk}/"]')).to_have_count(1)
    expect(page.locator(f'a[href="/operator/training/{others.pk}/"]')).to_have_count(0)

    page.locator(f'a[href="/operator/training/{own.pk}/"]').click()
    expect(page).to_have_url(re.compile(rf"/operator/training/{own.pk}/$"))
    player = page.locator(".recording-player")
    options = player.locator("select[name=purpose] option")
    expect(options).to_have_count(1)
    expect(options).to_contain_text("研修")
    assert options.get_attribute("value") == "training"
    player.get_by_role("button", name="再生").click()
    wait_until_playing_past(page, 0.5)
    expect(player.locator(".player-error")).to_be_hidden()
    playback = AccessEvent.objects.get(action=Action.PLAYBACK)
    assert (playback.recording_id, playback.purpose) == (own.pk, "training")
    assert playback.actor == operator.user

    response = page.goto(f"/operator/training/{others.pk}/")
    assert response.status == 403
    expect(page.get_by_role("alert")).to_contain_text("研修用レビューの対象ではありません")
    expect(page.locator(".recording-player")).to_have_count(0)

    for recording in (own, others):
        response = page.goto(f"/admin/recordings/recording/{recording.pk}/change/")
        assert response.status == 403, page.url
        expect(page.locator(".recording-player")).to_have_count(0)
        expect(page.locator("audio")).to_have_count(0)
    assert not AccessEvent.objects.filter(action=Action.PLAYBACK, recording_id=others.pk).exists()
