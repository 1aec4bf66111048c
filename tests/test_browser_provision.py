"""In a real browser: a supervisor hands a recording to a lawyer through the provision
ledger (the recording's page → the form, refused without a basis → the confirmation → the
one download of the export), and the record is what the caller will be shown."""

import io
import re
import zipfile

import pytest
from playwright.sync_api import expect

from audit.models import AccessEvent
from contactcenter.roles import SUPERVISOR
from recordings import provision
from recordings.models import ProvisionRecord
from twilio_emulator.server import synthetic_wav

from .factories import UserFactory, recording_notice, stored_recording
from .helpers.browser import log_in
from .helpers.staff import acknowledged_operator

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

AUDIO = synthetic_wav(2)


@pytest.fixture
def recording(live_db):
    recording_notice()
    return stored_recording(acknowledged_operator("op-p"), audio=AUDIO)


@pytest.fixture
def supervisor(live_db):
    return UserFactory(username="supervisor-p", roles=[SUPERVISOR])


def test_a_supervisor_hands_a_recording_to_a_lawyer_through_the_ledger(page, recording, supervisor):
    log_in(page, "supervisor-p", "pass")
    expect(page).to_have_url(re.compile(r"/admin/$"))
    page.goto(f"/admin/recordings/recording/{recording.pk}/change/")

    page.get_by_role("link", name="第三者に提供する").click()
    page.get_by_label("提供先（氏名・名称）").fill("山田法律事務所 弁護士 山田太郎")
    page.get_by_label("提供先の種別").select_option("lawyer")
    page.get_by_label("提供先の住所・連絡先").fill("東京都千代田区霞が関1-1-1")
    page.get_by_role("button", name="次へ（確認）").click()

    # No basis chosen: refused, in Japanese, and nothing is recorded.
    expect(page.locator(".field-basis .errorlist")).to_contain_text("根拠が必要です")
    assert ProvisionRecord.objects.count() == 0

    page.get_by_label("本人の同意").check()
    page.get_by_label("同意の取得方法").select_option("written")
    page.get_by_label("同意を得た日").fill("2026-11-30")
    page.get_by_label("同意の確認方法").fill("署名済みの同意書を受領。原本は法務部で保管。")
    page.get_by_role("button", name="次へ（確認）").click()

    expect(page.get_by_role("heading", name="記録する内容の確認")).to_be_visible()
    expect(page.locator(".provision-confirm")).to_contain_text("弁護士")
    assert ProvisionRecord.objects.count() == 0
    page.get_by_role("button", name="記録して提供する").click()

    expect(page.get_by_role("heading", name="第三者提供を記録しました")).to_be_visible()
    with page.expect_download() as download_info:
        page.get_by_role("button", name="書き出しをダウンロード").click()
    download = download_info.value
    archive = zipfile.ZipFile(io.BytesIO(download.path().read_bytes()))
    assert archive.read(f"{recording.sid}.wav") == AUDIO

    record = ProvisionRecord.objects.get()
    assert record.exported_at is not None
    assert (record.provided_by, record.basis) == (supervisor, "consent")
    assert AccessEvent.objects.filter(
        action=AccessEvent.Action.THIRD_PARTY_PROVISION, recording_id=recording.pk
    ).exists()
    assert [
        r.summary_ja()["recipient_kind"]
        for r in provision.records_about(recording.call.customer.phone_number)
    ] == ["弁護士"]

    # A second download is refused.
    page.reload()
    expect(page.locator(".errornote")).to_contain_text("ダウンロード済み")
