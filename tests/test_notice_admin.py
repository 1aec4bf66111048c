"""Supervisors write drafts, preview them, publish with a confirmation step and compare
versions in the admin; a published version is read-only there."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from privacy.models import Notice

from .factories import NoticeFactory, PurposeFactory, published_notice

pytestmark = pytest.mark.django_db


@pytest.fixture
def purposes():
    return [
        PurposeFactory(code="quality", name_ja="品質向上", name_en="service quality"),
        PurposeFactory(
            code="training",
            name_ja="研修",
            name_en="operator training",
            retention_days=90,
            allows_training_review=True,
        ),
    ]


@pytest.fixture
def draft(purposes):
    return NoticeFactory(purposes=purposes)


def admin_url(name, *args):
    return reverse(f"admin:privacy_notice_{name}", args=args)


def test_a_supervisor_creates_a_draft_with_purposes(client, supervisor, purposes):
    client.force_login(supervisor)
    data = {
        "title_ja": "通話録音について",
        "title_en": "About call recording",
        "body_ja": "本文",
        "body_en": "Body",
        "provider_statement_ja": "Twilio を利用します。",
        "provider_statement_en": "We use Twilio.",
        "contact_ja": "",
        "contact_en": "",
        "announcement_ja": "",
        "announcement_en": "",
        "effective_from_0": "",
        "effective_from_1": "",
        "notice_purposes-TOTAL_FORMS": "1",
        "notice_purposes-INITIAL_FORMS": "0",
        "notice_purposes-MIN_NUM_FORMS": "1",
        "notice_purposes-MAX_NUM_FORMS": "1000",
        "notice_purposes-0-purpose": str(purposes[0].pk),
        "_continue": "1",
    }
    response = client.post(reverse("admin:privacy_notice_add"), data)
    assert response.status_code == 302, response.context["errors"] if response.context else ""
    notice = Notice.objects.get()
    assert notice.status == Notice.Status.DRAFT
    assert notice.version is None
    assert [np.purpose.code for np in notice.notice_purposes.all()] == ["quality"]


def test_a_long_announcement_is_flagged_when_the_draft_is_saved(client, supervisor, draft):
    client.force_login(supervisor)
    draft.announcement_ja = "このお電話は録音させていただきます。" * 12
    draft.save()
    response = client.get(admin_url("preview", draft.pk))
    assert response.status_code == 200
    assert "長すぎます" in response.text
    assert "30 秒以内" in response.text


def test_the_preview_shows_the_public_page_and_the_composed_announcement(client, supervisor, draft):
    client.force_login(supervisor)
    response = client.get(admin_url("preview", draft.pk))
    assert response.status_code == 200
    assert "この下書きは公開されていません" in response.text
    assert draft.body_ja in response.text
    assert "品質向上、研修のため、録音させていただきます" in response.text
    assert "service quality and operator training" in response.text


def test_publishing_asks_for_confirmation_first(client, supervisor, draft):
    client.force_login(supervisor)
    page = client.get(admin_url("publish", draft.pk))
    assert page.status_code == 200
    assert "第 1 版" in page.text
    assert "変更も削除もできません" in page.text

    refused = client.post(admin_url("publish", draft.pk), {})
    assert refused.status_code == 400
    draft.refresh_from_db()
    assert draft.status == Notice.Status.DRAFT

    done = client.post(admin_url("publish", draft.pk), {"confirm": "on"})
    assert done.status_code == 302
    draft.refresh_from_db()
    assert draft.status == Notice.Status.PUBLISHED
    assert draft.version == 1
    assert draft.published_by == supervisor
    assert client.get(reverse("privacy:notice-detail", args=[1])).status_code == 200


def test_publishing_at_a_future_time_schedules_the_version(client, supervisor, purposes):
    published_notice(purposes=purposes)
    draft = NoticeFactory(purposes=purposes)
    client.force_login(supervisor)
    when = timezone.localtime() + timedelta(days=3)
    client.post(
        admin_url("publish", draft.pk),
        {"confirm": "on", "effective_from": when.strftime("%Y-%m-%dT%H:%M")},
    )
    draft.refresh_from_db()
    assert draft.version == 2
    assert draft.effective_from.replace(second=0, microsecond=0) == when.replace(
        second=0, microsecond=0
    )
    assert Notice.objects.in_force().version == 1


def test_a_draft_that_cannot_be_published_says_why_and_changes_nothing(client, supervisor):
    empty = NoticeFactory(body_ja="")
    client.force_login(supervisor)
    response = client.post(admin_url("publish", empty.pk), {"confirm": "on"})
    assert response.status_code == 400
    assert "利用目的を 1 つ以上選んでください" in response.text
    assert "日本語本文を入力してください" in response.text
    empty.refresh_from_db()
    assert empty.status == Notice.Status.DRAFT


def test_a_past_effective_time_is_refused_with_a_message(client, supervisor, draft):
    client.force_login(supervisor)
    past = timezone.localtime() - timedelta(days=1)
    response = client.post(
        admin_url("publish", draft.pk),
        {"confirm": "on", "effective_from": past.strftime("%Y-%m-%dT%H:%M")},
    )
    assert response.status_code == 400
    assert "過去の日時から適用することはできません" in response.text
    draft.refresh_from_db()
    assert draft.version is None


def test_operators_cannot_publish(client, operator, draft):
    client.force_login(operator.user)
    assert client.post(admin_url("publish", draft.pk), {"confirm": "on"}).status_code == 403
    draft.refresh_from_db()
    assert draft.status == Notice.Status.DRAFT


def test_a_published_version_is_read_only_in_the_admin(client, supervisor, purposes):
    notice = published_notice(purposes=purposes)
    client.force_login(supervisor)
    page = client.get(admin_url("change", notice.pk))
    assert page.status_code == 200
    assert 'name="body_ja"' not in page.text
    assert "この版から新しい下書きを作成" in page.text
    response = client.post(admin_url("change", notice.pk), {"body_ja": "changed"})
    assert response.status_code == 403
    assert client.post(admin_url("delete", notice.pk), {"post": "yes"}).status_code == 403
    notice.refresh_from_db()
    assert notice.body_ja != "changed"


def test_a_correction_starts_as_a_new_draft_from_the_published_version(
    client, supervisor, purposes
):
    notice = published_notice(purposes=purposes)
    client.force_login(supervisor)
    response = client.post(admin_url("new_draft", notice.pk))
    draft = Notice.objects.exclude(pk=notice.pk).get()
    assert response.status_code == 302
    assert response.url == admin_url("change", draft.pk)
    assert draft.status == Notice.Status.DRAFT
    assert draft.body_ja == notice.body_ja
    assert {np.purpose_id for np in draft.notice_purposes.all()} == {p.pk for p in purposes}


def test_two_versions_are_compared_line_by_line(client, supervisor, purposes):
    v1 = published_notice(purposes=purposes[:1])
    v2 = NoticeFactory(purposes=purposes, body_ja="新しい本文です。")
    client.force_login(supervisor)
    response = client.get(admin_url("compare"), {"old": v1.pk, "new": v2.pk})
    assert response.status_code == 200
    assert f"− {v1.body_ja}" in response.text
    assert "+ 新しい本文です。" in response.text
    assert "+ training:" in response.text


def test_comparing_a_version_with_itself_shows_no_differences(client, supervisor, purposes):
    v1 = published_notice(purposes=purposes)
    client.force_login(supervisor)
    response = client.get(admin_url("compare"), {"old": v1.pk, "new": v1.pk})
    assert "違いはありません" in response.text


def test_comparing_an_unknown_notice_is_a_clear_error(client, supervisor):
    client.force_login(supervisor)
    response = client.get(admin_url("compare"), {"old": 999, "new": 998})
    assert response.status_code == 400
