"""The announcement callers hear names every purpose of the notice they consent under and the
provider (Twilio): a draft whose script leaves one out is not published (the admin says why,
in Japanese), an emptied script is written again from the purposes, and the consent record
keeps the text, naming every purpose the recording is later used for."""

import hashlib

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.urls import reverse

from consent.models import ConsentRecord
from consent.services import usable_purposes
from contactcenter.models import Call
from privacy.models import Notice, NoticePurpose
from privacy.services import new_draft_from, publish_notice

from .factories import NoticeFactory, PurposeFactory
from .helpers.staff import acknowledged_operator
from .helpers.webhooks import twilio_post

pytestmark = pytest.mark.django_db

CALL_SID = "CA" + "7" * 32


@pytest.fixture
def quality():
    return PurposeFactory(code="quality", name_ja="品質向上", name_en="service quality")


@pytest.fixture
def training():
    return PurposeFactory(
        code="training", name_ja="研修", name_en="operator training", retention_days=90
    )


@pytest.fixture
def v1(quality, supervisor):
    """v1 announces quality only; its scripts are written from that purpose."""
    return publish_notice(notice=NoticeFactory(purposes=[quality]), by=supervisor)


@pytest.fixture
def v2_draft(v1, training):
    """A correction of v1 that adds the training purpose: its scripts are v1's, copied."""
    draft = new_draft_from(notice=v1)
    NoticePurpose.objects.create(notice=draft, purpose=training)
    return draft


def publish_in_admin(client, notice):
    return client.post(reverse("admin:privacy_notice_publish", args=[notice.pk]), {"confirm": "on"})


def test_a_draft_whose_announcement_leaves_out_a_purpose_is_not_published(
    client, supervisor, v2_draft
):
    """GIVEN v2 adds 研修 but kept v1's script, which names only 品質向上
    WHEN a supervisor publishes it in the admin
    THEN it is refused with a Japanese message naming 研修 in both languages, and stays a
    draft."""
    client.force_login(supervisor)

    response = publish_in_admin(client, v2_draft)

    assert response.status_code == 400
    assert "発信者が聞く日本語のアナウンスに「研修」が含まれていません" in response.text
    assert "発信者が聞く英語のアナウンスに「operator training」が含まれていません" in response.text
    v2_draft.refresh_from_db()
    assert v2_draft.status == Notice.Status.DRAFT
    assert Notice.objects.published().count() == 1


def test_a_script_that_does_not_name_the_provider_is_refused(supervisor, quality):
    draft = NoticeFactory(purposes=[quality], announcement_ja="品質向上のため録音します。")

    with pytest.raises(ValidationError) as refusal:
        publish_notice(notice=draft, by=supervisor)

    assert any("「Twilio」" in message for message in refusal.value.messages)
    draft.refresh_from_db()
    assert draft.status == Notice.Status.DRAFT


def test_an_emptied_script_is_written_again_from_every_purpose(supervisor, v2_draft):
    """GIVEN the refused v2
    WHEN its scripts are emptied, as the message says, and it is published
    THEN both scripts are written from its purposes: each names 品質向上, 研修 and Twilio."""
    v2_draft.announcement_ja = v2_draft.announcement_en = ""
    v2_draft.save()

    v2 = publish_notice(notice=v2_draft, by=supervisor)

    assert v2.version == 2
    for name in ("品質向上", "研修", "トゥイリオ"):
        assert name in v2.announcement_ja
    for name in ("service quality", "operator training", "Twilio"):
        assert name in v2.announcement_en


def test_a_script_edited_by_hand_to_name_every_purpose_is_kept(supervisor, v2_draft):
    script = "このお電話は品質向上と研修のため録音し、Twilio 社が伝送・保存します。"
    v2_draft.announcement_ja = script
    v2_draft.announcement_en = ""
    v2_draft.save()

    v2 = publish_notice(notice=v2_draft, by=supervisor)

    assert v2.announcement_ja == script
    assert "operator training" in v2.announcement_en


def call_params(**extra):
    return {
        "CallSid": CALL_SID,
        "AccountSid": settings.TWILIO_ACCOUNT_SID,
        "From": "+81312345678",
        "To": "+815012345678",
        "CallStatus": "ringing",
        "Direction": "inbound",
        **extra,
    }


@pytest.mark.parametrize(
    ("digits", "language", "names"),
    [
        (["1"], "ja", lambda purpose: purpose.name_ja),
        (["9", "1"], "en", lambda purpose: purpose.name_en),
    ],
)
def test_the_consent_record_names_every_purpose_the_recording_is_used_for(
    client, supervisor, v2_draft, digits, language, names
):
    """GIVEN v2 (adding 研修) is published the way the admin allows: as it is, or, when
    that is refused, with its scripts emptied as the message says
    WHEN a caller hears the announcement and presses 1 (in Japanese, or in English after 9)
    THEN the consent record's text, whose SHA-256 it keeps, names every purpose the
    recording may be used for."""
    acknowledged_operator("op-a")
    client.force_login(supervisor)
    if publish_in_admin(client, v2_draft).status_code != 302:
        v2_draft.announcement_ja = v2_draft.announcement_en = ""
        v2_draft.save()
        assert publish_in_admin(client, v2_draft).status_code == 302
    client.logout()

    twilio_post(client, "/twilio/voice/incoming", call_params())
    query = "notice=2&lang=ja&attempt=1"
    for digit in digits:
        response = twilio_post(
            client,
            "/twilio/voice/consent",
            call_params(CallStatus="in-progress", Digits=digit),
            query=query,
        )
        assert response.status_code == 200
        query = f"notice=2&lang={language}&attempt=1"

    record = ConsentRecord.objects.get(call__sid=CALL_SID)
    assert record.decision == ConsentRecord.Decision.GRANTED
    assert record.notice.version == 2
    assert (
        record.announcement_sha256 == hashlib.sha256(record.announcement_text.encode()).hexdigest()
    )
    used = usable_purposes(call=Call.objects.get(sid=CALL_SID))
    assert {purpose.purpose.code for purpose in used} == {"quality", "training"}
    for purpose in used:
        assert names(purpose.purpose) in record.announcement_text
