"""A purpose's usable days are 1 to 3,650 (ten years): the admin refuses anything else with a
Japanese message, the database refuses a direct write, and 3,650 days fetch and store as any
other purpose."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.urls import reverse

from privacy.models import NoticePurpose, Purpose
from recordings import ingest
from recordings.models import Recording, RecordingPurpose

from .factories import PurposeFactory, consented_call, published_notice
from .helpers.recordings import completed, decrypted, media

pytestmark = pytest.mark.django_db

REFUSED = "日数は 1〜3,650 日（10 年）の範囲で入力してください。"


def purpose_form(days):
    return {
        "code": "evidence",
        "name_ja": "証跡",
        "name_en": "evidence",
        "description_ja": "説明",
        "description_en": "Description",
        "retention_days": str(days),
    }


@pytest.mark.parametrize("days", [0, 3651, 99_999_999_999])
def test_the_admin_refuses_days_outside_1_to_3650_in_japanese(client, supervisor, days):
    """GIVEN a supervisor on the purpose form
    WHEN they enter 0, 3,651 or 99,999,999,999 usable days
    THEN the form is shown again with the Japanese message and no purpose is saved."""
    client.force_login(supervisor)

    response = client.post(reverse("admin:privacy_purpose_add"), purpose_form(days))

    assert response.status_code == 200
    assert REFUSED in response.text
    assert not Purpose.objects.filter(code="evidence").exists()


def test_the_admin_accepts_3650_days(client, supervisor):
    client.force_login(supervisor)

    response = client.post(reverse("admin:privacy_purpose_add"), purpose_form(3650))

    assert response.status_code == 302
    assert Purpose.objects.get(code="evidence").retention_days == 3650


@pytest.mark.parametrize("days", [0, 3651])
def test_the_database_refuses_a_direct_write_outside_the_bounds(days):
    purpose = PurposeFactory(retention_days=30)

    with pytest.raises(IntegrityError), transaction.atomic():
        Purpose.objects.filter(pk=purpose.pk).update(retention_days=days)

    purpose.refresh_from_db()
    assert purpose.retention_days == 30


def test_the_database_refuses_announced_days_outside_the_bounds():
    notice = published_notice(purposes=[PurposeFactory(retention_days=30)])
    announced = NoticePurpose.objects.get(notice=notice)

    with pytest.raises(IntegrityError), transaction.atomic():
        NoticePurpose.objects.filter(pk=announced.pk).update(retention_days=3651)

    announced.refresh_from_db()
    assert announced.retention_days == 30


def test_a_recording_under_a_3650_day_purpose_is_fetched_and_stored(client, twilio, operator):
    """GIVEN a notice announcing a purpose usable for 3,650 days and a consented call
    WHEN its recording is fetched
    THEN it is stored, and its window closes 3,650 days after the call started."""
    published_notice(purposes=[PurposeFactory(code="archive", retention_days=3650)])
    call = consented_call(operator)
    recording = completed(client, twilio, call)

    ingest.fetch(recording.pk)
    recording.refresh_from_db()

    assert recording.status == Recording.Status.STORED
    assert decrypted(recording) == media(twilio, recording)
    window = RecordingPurpose.objects.get(recording=recording)
    assert window.usable_until == call.started_at + timedelta(days=3650)
    assert recording.retain_until == window.usable_until
