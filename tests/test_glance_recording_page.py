"""Issue 15, item 8: the recording page shows one date for a window (local time, not UTC on one
line and Tokyo on the next), opens with the summary and the player above the hashes, and offers
no 保存 on a page where nothing can be changed."""

import re
from datetime import UTC, datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from recordings.models import Recording
from twilio_emulator.server import synthetic_wav

from . import factories

pytestmark = pytest.mark.django_db

# 16:30 UTC is 01:30 the next day in Tokyo: a date in UTC and one in local time differ.
LATE_EVENING_UTC = datetime(2026, 11, 23, 16, 30, tzinfo=UTC)


@pytest.fixture
def page(client, supervisor, operator, notice):
    recording = factories.stored_recording(operator, audio=synthetic_wav(1))
    recording.call.started_at = LATE_EVENING_UTC
    recording.call.save(update_fields=["started_at"])
    Recording.objects.filter(pk=recording.pk).update(duration=97)
    recording.purposes.update(usable_until=LATE_EVENING_UTC + timezone.timedelta(days=90))
    client.force_login(supervisor)
    response = client.get(reverse("admin:recordings_recording_change", args=[recording.pk]))
    assert response.status_code == 200
    return response.content.decode()


def test_a_window_is_shown_as_one_date_in_local_time(page):
    until = LATE_EVENING_UTC + timezone.timedelta(days=90)  # 2027-02-21 16:30 UTC
    local = timezone.localtime(until).date()
    assert local != until.date()
    assert f"{until:%Y-%m-%d}" not in page
    assert f"{local:%Y-%m-%d}" in page or f"{local.year}年{local.month}月{local.day}日" in page
    assert f"{until.year}年{until.month}月{until.day}日" not in page


def test_the_player_and_summary_come_before_the_hashes(page):
    player = page.index('class="recording-player"')
    assert player < page.index("plaintext_sha256")
    assert page.index("1:37") < player  # the duration, in the summary
    assert re.search(r"<details><summary>\s*<h2[^>]*>(?:暗号化|Encrypted)", page)


def test_a_read_only_page_offers_no_save_button(page):
    assert 'name="_save"' not in page
    assert 'name="_continue"' not in page
