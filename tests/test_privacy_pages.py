"""The public notice pages: no login, Japanese first, every published version kept, drafts
never shown."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from privacy.services import publish_notice

from .factories import NoticeFactory, PurposeFactory, published_notice

pytestmark = pytest.mark.django_db


@pytest.fixture
def purposes():
    return [
        PurposeFactory(
            code="quality", name_ja="品質向上", name_en="service quality", retention_days=365
        ),
        PurposeFactory(
            code="training",
            name_ja="研修",
            name_en="operator training",
            retention_days=90,
            allows_training_review=True,
        ),
    ]


@pytest.fixture
def v1(purposes):
    return published_notice(purposes=purposes)


def test_the_notice_in_force_is_shown_in_japanese_without_login(client, v1):
    response = client.get(reverse("privacy:notice-current"))
    assert response.status_code == 200
    page = response.text
    assert '<html lang="ja"' in page
    assert v1.body_ja in page
    assert "品質向上" in page and "研修" in page
    assert "通話日から1年間" in page and "通話日から90日間" in page
    assert "Twilio" in page
    assert reverse("portal:start") in page
    assert v1.contact_ja in page
    assert "適用中" in page


def test_the_english_switch_shows_the_english_text(client, v1):
    client.post(reverse("set_language"), {"language": "en", "next": "/privacy/"})
    page = client.get(reverse("privacy:notice-current")).text
    assert '<html lang="en"' in page
    assert v1.body_en in page
    assert "service quality" in page
    assert "for 1 year after the call" in page


def test_a_browser_asking_for_english_still_gets_japanese_until_the_switch_is_used(client, v1):
    page = client.get(reverse("privacy:notice-current"), HTTP_ACCEPT_LANGUAGE="en-US,en").text
    assert '<html lang="ja"' in page


def test_the_body_is_shown_as_text_not_html(client, purposes):
    draft = NoticeFactory(purposes=purposes, body_ja="<script>alert('x')</script>\n\n次の段落")
    publish_notice(notice=draft, by=None)
    page = client.get(reverse("privacy:notice-current")).text
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "<p>次の段落</p>" in page


def test_without_a_published_notice_the_page_says_so(client, purposes):
    NoticeFactory(purposes=purposes, body_ja="下書きの本文")
    response = client.get(reverse("privacy:notice-current"))
    assert response.status_code == 200
    assert "まだ公開されていません" in response.text
    assert "下書きの本文" not in response.text


def test_drafts_are_never_public(client, purposes, v1):
    draft = NoticeFactory(purposes=purposes)
    assert draft.version is None
    assert client.get(reverse("privacy:notice-detail", args=[2])).status_code == 404
    assert client.get(reverse("privacy:notice-json", args=[2])).status_code == 404
    assert client.get(f"/privacy/notices/{draft.pk + 100}/").status_code == 404


def test_every_version_stays_readable_after_a_new_one_takes_effect(client, purposes, v1):
    v2 = published_notice(purposes=purposes[:1])
    current = client.get(reverse("privacy:notice-current")).text
    assert "v2" in current

    old = client.get(reverse("privacy:notice-detail", args=[1]))
    assert old.status_code == 200
    assert "現在は適用されていません" in old.text
    assert "研修" in old.text  # v1 announced training; v2 does not

    listing = client.get(reverse("privacy:notice-list")).text
    assert reverse("privacy:notice-detail", args=[1]) in listing
    assert reverse("privacy:notice-detail", args=[2]) in listing
    assert (
        f'datetime="{v2.effective_from.astimezone(timezone.get_current_timezone()).isoformat()}"'
        in listing
    )


def test_a_scheduled_version_is_listed_but_not_yet_in_force(client, purposes, v1):
    published_notice(purposes=purposes, effective_from=timezone.now() + timedelta(days=7))
    assert "v1" in client.get(reverse("privacy:notice-current")).text
    listing = client.get(reverse("privacy:notice-list")).text
    assert "適用予定" in listing
    scheduled = client.get(reverse("privacy:notice-detail", args=[2])).text
    assert "下記の日時から適用されます" in scheduled


def test_the_json_version_has_both_languages_and_the_announced_days(client, purposes, v1):
    v2 = published_notice(purposes=purposes)
    response = client.get(reverse("privacy:notice-json", args=[1]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    data = response.json()
    assert data["version"] == 1
    assert data["url"].endswith("/privacy/notices/1/")
    assert data["in_force_until"] == v2.effective_from.isoformat()
    assert data["body"] == {"ja": v1.body_ja, "en": v1.body_en}
    assert {p["code"]: p["usable_days"] for p in data["purposes"]} == {
        "quality": 365,
        "training": 90,
    }
    assert data["purposes"][1]["training_review"] is True
    assert data["announcement"]["ja"] == v1.announcement_ja
    assert "Twilio" in data["announcement"]["en"]


def test_the_requests_page_explains_each_request(client, v1):
    page = client.get(reverse("portal:start")).text
    for phrase in ("録音を聞く", "写しを受け取る", "削除", "利用を停止", "同意を撤回"):
        assert phrase in page
    assert v1.contact_ja in page


def test_the_root_leads_to_the_notice(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response.url == reverse("privacy:notice-current")


def test_public_pages_refuse_other_methods(client, v1):
    assert client.post(reverse("privacy:notice-current")).status_code == 405
