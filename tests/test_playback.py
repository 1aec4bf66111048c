"""Listening to recordings: purpose-bound access (the permission matrix), playback sessions,
HTTP Range streaming of decrypted audio, one side of a two-channel call, and the audit trail
of every access and refusal."""

import io
import tempfile
import wave
from datetime import timedelta
from pathlib import Path

import pytest
from django.core import signing
from django.urls import reverse
from django.utils import timezone

from audit.models import AccessEvent
from recordings import retention
from recordings.models import Recording, RecordingPurpose
from recordings.playback import RangeNotSatisfiable, parse_range, wav_layout
from training import services as training_services
from twilio_emulator.server import synthetic_wav

from . import factories

pytestmark = pytest.mark.django_db

Action = AccessEvent.Action
SECONDS = 3
AUDIO = synthetic_wav(SECONDS)  # 8 kHz, 16-bit, two channels: 96,044 bytes


def stored_recording(operator, *, audio=AUDIO):
    return factories.stored_recording(operator, audio=audio)


@pytest.fixture
def recording(notice, operator):
    return stored_recording(operator)


def start(client, recording, purpose, **extra):
    return client.post(
        reverse("recordings:play", args=[recording.pk]), {"purpose": purpose, **extra}
    )


def session(client, recording, purpose="quality", **extra):
    response = start(client, recording, purpose, **extra)
    assert response.status_code == 200, response.json()
    return response.json()["url"]


def body(response):
    return b"".join(response.streaming_content)


def close_window(recording, code):
    RecordingPurpose.objects.filter(recording=recording, purpose__code=code).update(
        usable_until=timezone.now() - timedelta(minutes=1)
    )


def purge(recording):
    Recording.objects.filter(pk=recording.pk).update(
        retain_until=timezone.now() - timedelta(days=1)
    )
    retention.purge_due()


# --- the permission matrix --------------------------------------------------------------------


MATRIX = [
    # who, purpose, change, allowed, reason
    ("supervisor", "quality", None, True, "allowed"),
    ("supervisor", "training", None, True, "allowed"),
    ("supervisor", "sales", None, False, "not_announced"),
    ("supervisor", "", None, False, "no_purpose"),
    ("supervisor", "quality", "close quality", False, "window_closed"),
    ("supervisor", "training", "close quality", True, "allowed"),
    ("supervisor", "quality", "purge", False, "not_stored"),
    ("compliance", "quality", None, False, "no_permission"),
    ("own operator", "training", None, True, "allowed"),
    ("own operator", "quality", None, False, "not_training"),
    ("own operator", "training", "close training", False, "window_closed"),
    ("own operator", "training", "purge", False, "not_stored"),
    ("other operator", "training", None, False, "not_yours"),
    ("other operator", "training", "mark", True, "allowed"),
    ("other operator", "quality", "mark", False, "not_training"),
]


@pytest.mark.parametrize(("who", "purpose", "change", "allowed", "reason"), MATRIX)
def test_the_permission_matrix(
    client,
    recording,
    supervisor,
    compliance_officer,
    operator,
    other_operator,
    who,
    purpose,
    change,
    allowed,
    reason,
):
    users = {
        "supervisor": supervisor,
        "compliance": compliance_officer,
        "own operator": operator.user,
        "other operator": other_operator.user,
    }
    if change == "close quality":
        close_window(recording, "quality")
    elif change == "close training":
        close_window(recording, "training")
    elif change == "purge":
        purge(recording)
    elif change == "mark":
        training_services.mark_training_material(recording, by=supervisor)
    client.force_login(users[who])

    response = start(client, recording, purpose)

    event = AccessEvent.objects.exclude(
        action__in=[Action.PURGE, Action.TRAINING_MARKED, Action.NOTICE_PUBLISHED]
    ).get()
    assert event.actor == users[who]
    assert event.recording_id == recording.pk
    assert event.purpose == purpose
    if allowed:
        assert response.status_code == 200
        assert response.json()["url"].startswith("/recordings/audio/")
        assert event.action == Action.PLAYBACK
    else:
        assert response.status_code == 403
        assert response.json()["reason"] == reason
        assert response.json()["error"]
        assert event.action == Action.REFUSED
        assert event.detail["reason"] == reason


def test_refusals_are_worded_in_japanese(client, recording, operator):
    client.force_login(operator.user)

    message = start(client, recording, "quality").json()["error"]

    assert "研修" in message


def test_a_closed_window_names_its_end_date(client, recording, supervisor):
    close_window(recording, "quality")
    client.force_login(supervisor)

    message = start(client, recording, "quality").json()["error"]

    assert timezone.localdate().strftime("%Y") in message


def test_without_login_nothing_plays_and_the_channel_must_be_known(client, recording, supervisor):
    assert start(client, recording, "quality").status_code == 403
    client.force_login(supervisor)
    response = start(client, recording, "quality", channel="left")
    assert response.status_code == 400
    assert not AccessEvent.objects.filter(action=Action.PLAYBACK).exists()
    assert client.post(reverse("recordings:play", args=[10**9]), {}).status_code == 404
    assert client.get(reverse("recordings:play", args=[recording.pk])).status_code == 405


# --- the audio stream -------------------------------------------------------------------------


class TestStreaming:
    @pytest.fixture
    def url(self, client, recording, supervisor):
        client.force_login(supervisor)
        return session(client, recording)

    def test_the_whole_recording(self, client, url):
        response = client.get(url)

        assert response.status_code == 200
        assert response["Content-Type"] == "audio/wav"
        assert response["Accept-Ranges"] == "bytes"
        assert response["Content-Length"] == str(len(AUDIO))
        assert "no-store" in response["Cache-Control"]
        assert response["Content-Disposition"].startswith("inline")
        assert body(response) == AUDIO

    @pytest.mark.parametrize(
        ("header", "start", "end"),
        [
            ("bytes=0-0", 0, 1),
            ("bytes=0-99", 0, 100),
            ("bytes=65530-65545", 65530, 65546),  # across a segment boundary
            ("bytes=50000-", 50000, len(AUDIO)),
            ("bytes=-100", len(AUDIO) - 100, len(AUDIO)),
            ("bytes=-1000000", 0, len(AUDIO)),  # a suffix longer than the audio: all of it
            (f"bytes=90000-{10**9}", 90000, len(AUDIO)),  # an end past the audio is cut
            (f"bytes={len(AUDIO) - 1}-", len(AUDIO) - 1, len(AUDIO)),
        ],
    )
    def test_byte_ranges(self, client, url, header, start, end):
        response = client.get(url, HTTP_RANGE=header)

        assert response.status_code == 206
        assert response["Content-Range"] == f"bytes {start}-{end - 1}/{len(AUDIO)}"
        assert response["Content-Length"] == str(end - start)
        assert body(response) == AUDIO[start:end]

    @pytest.mark.parametrize(
        "header",
        [
            f"bytes={len(AUDIO)}-",
            "bytes=500-100",
            "bytes=-0",
            "bytes=abc",
            "bytes=-",
            "bytes=1-2-3",
        ],
    )
    def test_a_bad_range_gets_416(self, client, url, header):
        response = client.get(url, HTTP_RANGE=header)

        assert response.status_code == 416
        assert response["Content-Range"] == f"bytes */{len(AUDIO)}"
        assert "範囲" in response.content.decode()

    @pytest.mark.parametrize("header", ["items=0-5", "bytes=0-5,10-20"])
    def test_ranges_it_does_not_serve_get_the_whole_audio(self, client, url, header):
        response = client.get(url, HTTP_RANGE=header)

        assert response.status_code == 200
        assert body(response) == AUDIO

    def test_head_answers_the_size(self, client, url):
        response = client.head(url)

        assert response.status_code == 200
        assert response["Content-Length"] == str(len(AUDIO))

    def test_one_playback_session_is_one_audit_row_however_many_ranges(self, client, url):
        for offset in range(0, 90000, 10000):
            client.get(url, HTTP_RANGE=f"bytes={offset}-")

        assert AccessEvent.objects.filter(action=Action.PLAYBACK).count() == 1

    def test_a_window_closing_stops_the_session(self, client, url, recording):
        close_window(recording, "quality")

        response = client.get(url)

        assert response.status_code == 403
        assert "終了" in response.content.decode()
        refusal = AccessEvent.objects.get(action=Action.REFUSED)
        assert refusal.detail["reason"] == "window_closed"

    def test_a_purge_stops_the_session(self, client, url, recording):
        purge(recording)

        assert client.get(url).status_code == 403

    def test_the_link_belongs_to_whoever_opened_it(self, client, url, other_operator):
        client.force_login(other_operator.user)

        assert client.get(url).status_code == 403

    def test_a_forged_or_expired_link_is_refused(self, client, url, monkeypatch, recording):
        token = url.rstrip("/").rsplit("/", 1)[1]
        forged = reverse("recordings:audio", args=[token[:-2] + "xx"])
        assert client.get(forged).status_code == 403

        from recordings import views

        long_ago = timezone.now().timestamp() - views.TOKEN_MAX_AGE - 60
        monkeypatch.setattr(signing.time, "time", lambda: long_ago)
        old = signing.dumps(signing.loads(token, salt=views.TOKEN_SALT), salt=views.TOKEN_SALT)
        monkeypatch.undo()
        response = client.get(reverse("recordings:audio", args=[old]))
        assert response.status_code == 403
        assert "期限" in response.content.decode()

    def test_no_plaintext_audio_is_written_anywhere(self, client, url, settings):
        before = set(Path(tempfile.gettempdir()).rglob("*"))

        for header in ("", "bytes=0-", "bytes=1000-5000"):
            body(client.get(url, HTTP_RANGE=header) if header else client.get(url))

        root = Path(settings.STORAGES["recordings"]["OPTIONS"]["location"])
        for path in root.rglob("*"):
            if path.is_file():
                assert b"RIFF" not in path.read_bytes()
        new = [p for p in set(Path(tempfile.gettempdir()).rglob("*")) - before if p.is_file()]
        assert not [p for p in new if b"RIFF" in p.read_bytes()[:64]]


class TestOneSide:
    def sides(self):
        with wave.open(io.BytesIO(AUDIO)) as stereo:
            frames = stereo.readframes(stereo.getnframes())
        left, right = bytearray(), bytearray()
        for offset in range(0, len(frames), 4):
            left += frames[offset : offset + 2]
            right += frames[offset + 2 : offset + 4]
        return bytes(left), bytes(right)

    @pytest.mark.parametrize(("channel", "side"), [("customer", 0), ("operator", 1)])
    def test_each_side_is_a_mono_wav_of_that_channel(
        self, client, recording, supervisor, channel, side
    ):
        client.force_login(supervisor)
        url = session(client, recording, channel=channel)

        audio = body(client.get(url))

        with wave.open(io.BytesIO(audio)) as mono:
            assert mono.getnchannels() == 1
            assert mono.getsampwidth() == 2
            assert mono.getframerate() == 8000
            assert mono.readframes(mono.getnframes()) == self.sides()[side]
        assert AccessEvent.objects.get(action=Action.PLAYBACK).detail == {"channel": channel}

    @pytest.mark.parametrize(
        "header", ["bytes=0-10", "bytes=40-50", "bytes=43-44", "bytes=1001-3002", "bytes=-7"]
    )
    def test_ranges_of_one_side(self, client, recording, supervisor, header):
        client.force_login(supervisor)
        url = session(client, recording, channel="operator")
        whole = body(client.get(url))

        response = client.get(url, HTTP_RANGE=header)

        start, end = parse_range(header, len(whole))
        assert response.status_code == 206
        assert body(response) == whole[start:end]

    def test_one_side_of_something_that_is_not_two_channel_pcm(self, client, notice, operator):
        from django.contrib.auth.models import Group

        from contactcenter.roles import SUPERVISOR

        mono = io.BytesIO()
        with wave.open(mono, "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(8000)
            out.writeframes(b"\x00\x01" * 800)
        recording = stored_recording(operator, audio=mono.getvalue())
        operator.user.groups.add(Group.objects.get(name=SUPERVISOR))
        client.force_login(operator.user)
        url = session(client, recording, channel="customer")

        response = client.get(url)

        assert response.status_code == 400
        assert response.content.decode() == "片側だけを再生できるのは2チャンネルの録音だけです。"


# --- downloads --------------------------------------------------------------------------------


def test_a_supervisor_downloads_for_a_purpose(client, recording, supervisor):
    client.force_login(supervisor)

    url = session(client, recording, download="1")
    response = client.get(url)

    assert response["Content-Disposition"].startswith("attachment")
    assert body(response) == AUDIO
    assert AccessEvent.objects.get(action=Action.DOWNLOAD).purpose == "quality"


def test_an_operator_may_listen_for_training_but_not_download(client, recording, operator):
    client.force_login(operator.user)

    response = start(client, recording, "training", download="1")

    assert response.status_code == 403
    assert response.json()["reason"] == "download_not_allowed"
    assert (
        AccessEvent.objects.exclude(action=Action.NOTICE_PUBLISHED).get().action == Action.REFUSED
    )


# --- the pages with a player ------------------------------------------------------------------


def test_the_recording_page_offers_the_open_purposes(client, recording, supervisor):
    close_window(recording, "quality")
    client.force_login(supervisor)

    page = client.get(reverse("admin:recordings_recording_change", args=[recording.pk]))

    text = page.content.decode()
    assert 'class="recording-player"' in text
    assert 'value="training"' in text
    assert 'value="quality"' not in text


def test_the_call_page_has_a_player_per_recording(client, recording, supervisor):
    client.force_login(supervisor)

    page = client.get(reverse("admin:contactcenter_call_change", args=[recording.call.pk]))

    assert page.status_code == 200
    assert page.content.decode().count('class="recording-player"') == 1


def test_a_purged_recording_page_says_it_cannot_be_played(client, recording, supervisor):
    purge(recording)
    client.force_login(supervisor)

    page = client.get(reverse("admin:recordings_recording_change", args=[recording.pk]))

    assert "再生できません" in page.content.decode()


def test_marking_as_training_material_needs_an_open_training_window(client, recording, supervisor):
    close_window(recording, "training")

    with pytest.raises(training_services.NotOpenForTraining):
        training_services.mark_training_material(recording, by=supervisor)
    assert Recording.objects.get().training_material_at is None


# --- the pieces -------------------------------------------------------------------------------


def test_parse_range_edge_cases():
    assert parse_range(None, 10) is None
    assert parse_range("", 10) is None
    assert parse_range("bytes=0-", 10) == (0, 10)
    assert parse_range("bytes=9-9", 10) == (9, 10)
    assert parse_range("bytes=-3", 10) == (7, 10)
    assert parse_range("bytes= 2-4", 10) == (2, 5)  # spaces inside the spec are tolerated
    assert parse_range("BYTES=2-4", 10) == (2, 5)
    for bad in ("bytes=10-", "bytes=-0", "bytes=x-y", "bytes=5-4"):
        with pytest.raises(RangeNotSatisfiable):
            parse_range(bad, 10)
    with pytest.raises(RangeNotSatisfiable):
        parse_range("bytes=0-", 0)


def test_wav_layout_walks_the_chunks():
    layout = wav_layout(AUDIO[:4096])
    assert (layout.channels, layout.sample_rate, layout.bits) == (2, 8000, 16)
    assert layout.data_offset == 44
    assert layout.data_size == len(AUDIO) - 44
    # An extra chunk before the samples (as some encoders write) is stepped over.
    extra = AUDIO[:36] + b"LIST" + (6).to_bytes(4, "little") + b"abcdef" + AUDIO[36:]
    assert wav_layout(extra).data_offset == 44 + 14
    assert wav_layout(b"not a wav file at all") is None
