"""The art. 32 public matters on /privacy/: every item the Act lists, in Japanese, the safety
measures written from the running configuration, the same items in the notice JSON, and no
notice published while one of them is missing."""

import base64
import json
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from audit.models import AccessEvent
from contactcenter.roles import NotAllowed
from privacy import organisation
from privacy.models import CrossBorderRecipient, Organisation
from privacy.services import publish_notice

from .factories import NoticeFactory, published_notice

pytestmark = pytest.mark.django_db


def key(byte):
    return base64.urlsafe_b64encode(bytes([byte]) * 32).decode()


@pytest.fixture
def v1(quality, training):
    notice = published_notice(purposes=[quality, training])
    CrossBorderRecipient.objects.update(
        country_regime_ja="米国には連邦の包括的な個人情報保護法がなく、州法が適用されます。"
    )
    return notice


def public_page(client):
    response = client.get(reverse("privacy:notice-current"))
    assert response.status_code == 200
    return response.text


def section(page, anchor):
    """The page from the heading with ``id=anchor`` to the next second-level heading."""
    start = page.index(f'id="{anchor}"')
    end = page.find("<h2", start)
    return page[start : end if end != -1 else None]


# --- the interface other apps use ----------------------------------------------------------


def test_current_is_an_empty_unsaved_organisation_before_anyone_fills_it_in():
    found = organisation.current()
    assert found.pk is None
    assert found.legal_name_ja == ""
    assert organisation.fee_for("copy") == 0


def test_fee_for_reads_the_saved_fee_and_is_zero_for_free_unknown_and_unchargeable_kinds(v1):
    Organisation.objects.update(fee_copy=1000, fee_purpose_notice=300)
    assert organisation.fee_for("copy") == 1000
    assert organisation.fee_for("purpose_notice") == 300
    assert organisation.fee_for("hear") == 0
    assert organisation.fee_for("delete") == 0  # art. 38 allows no fee for deletion
    assert organisation.fee_for("no-such-kind") == 0
    assert {kind.code for kind in organisation.REQUEST_KINDS} == {
        "purpose_notice",
        "hear",
        "copy",
        "correct",
        "suspend",
        "delete",
        "stop_provision",
        "provision_records",
        "cross_border",
        "withdraw",
    }


# --- the page: each item of art. 32 ----------------------------------------------------------


def test_the_page_names_the_business_its_address_and_representative(client, v1):
    business = section(public_page(client), "business")
    assert "個人情報取扱事業者の名称・住所・代表者" in business
    assert "株式会社サンプルコールセンター" in business
    assert "東京都千代田区丸の内一丁目1番1号" in business
    assert "代表取締役 山田太郎" in business


def test_the_page_lists_the_purposes_with_their_retention(client, v1):
    purposes = section(public_page(client), "purposes")
    assert "品質向上" in purposes and "通話日から1年間" in purposes
    assert "研修" in purposes and "通話日から90日間" in purposes


def test_each_kind_of_request_is_listed_with_how_to_make_it_and_its_fee(client, v1):
    rights = section(public_page(client), "your-rights")
    assert reverse("portal:start") in rights
    assert "お客様相談窓口（0120-000-000）" in rights  # by phone
    assert "確認コード" in rights  # the identity check: proving the number
    for label in (
        "利用目的の通知",
        "開示（録音を聞く）",
        "開示（録音の写し）",
        "通話に関するデータの訂正",
        "利用停止",
        "消去",
        "第三者提供の停止",
        "第三者提供記録の開示",
        "外国にある第三者が講ずる措置に関する情報の提供",
        "録音への同意の撤回",
    ):
        assert f'<th scope="row">{label}</th>' in rights, label
    assert rights.count("<td>無料</td>") == 10


def test_a_fee_set_in_the_settings_is_shown_and_zero_stays_free(client, v1):
    Organisation.objects.update(fee_copy=1100, fee_payment_ja="現金書留でお送りください。")
    rights = section(public_page(client), "your-rights")
    assert '<th scope="row">開示（録音の写し）</th><td>33(1)</td><td>1,100円（税込）</td>' in rights
    assert rights.count("<td>無料</td>") == 9
    assert "現金書留でお送りください。" in rights


def test_the_complaint_contact_and_the_accredited_body_are_shown(client, v1):
    complaints = section(public_page(client), "complaints")
    assert "お客様相談窓口" in complaints and "0120-000-000" in complaints
    assert "privacy@example.jp" in complaints and "平日 9:00〜17:00" in complaints
    assert "なし（当社は認定個人情報保護団体の対象事業者ではありません）" in complaints

    Organisation.objects.update(
        accredited_body_name_ja="一般財団法人日本情報経済社会推進協会",
        accredited_body_contact_ja="個人情報保護苦情相談室 03-5860-7565",
    )
    complaints = section(public_page(client), "complaints")
    assert "一般財団法人日本情報経済社会推進協会" in complaints
    assert "個人情報保護苦情相談室 03-5860-7565" in complaints


def test_the_foreign_recipient_is_shown_with_its_basis_measures_and_checks(client, v1):
    cross_border = section(public_page(client), "cross-border")
    assert "Twilio Inc.（米国）" in cross_border
    assert "音声通話・録音・SMS" in cross_border
    assert "相当措置（契約・認証）" in cross_border
    assert "データ処理契約（DPA）" in cross_border
    assert "米国には連邦の包括的な個人情報保護法がなく" in cross_border
    assert "未実施" in cross_border  # never checked yet


def test_the_safety_measures_cover_every_area_and_are_read_from_the_configuration(
    client, v1, settings
):
    settings.RECORDINGS_MASTER_KEYS = [("k-2026", b"n" * 32), ("k-2025", b"o" * 32)]
    settings.AXES_FAILURE_LIMIT = 5
    settings.SESSION_IDLE_TIMEOUT = 30 * 60
    settings.AUDIT_ANCHOR_KEY = key(7)
    page = public_page(client)
    measures = section(page, "safety-measures")
    for title in (
        "録音の暗号化と鍵の管理",
        "利用目的ごとの保存期間",
        "監査証跡",
        "通信事業者側での削除",
        "録音の保管場所",
        "従業者のアクセス制御",
        "外的環境の把握（外国での取扱い）",
    ):
        assert title in measures, title
    assert "AES-256-GCM" in measures
    assert "k-2026、k-2025" in measures and "新しい録音は k-2026 で保護" in measures
    assert "品質向上：通話から最長365日間" in measures
    assert "研修：通話から最長90日間" in measures
    assert "1時間ごとに削除します" in measures  # the purge's beat schedule
    assert "15分ごとにデータベースの外に書き出しています" in measures
    assert "Twilio 側の録音は" in measures
    assert "当社サーバーのローカルディレクトリ" in measures
    assert "監督者、コンプライアンス担当、オペレーター" in measures
    assert "監督者、コンプライアンス担当は、パスワードと二要素認証" in measures
    assert "パスワードを5回誤るとアカウントを30分間ロック" in measures
    assert "操作が30分ないとログインが切れます" in measures
    assert "Twilio Inc.（米国）：音声通話・録音・SMS" in measures
    # No key material is ever printed.
    assert base64.urlsafe_b64encode(b"n" * 32).decode() not in page
    assert key(7) not in page


def test_changing_a_setting_changes_the_page(client, v1, settings):
    settings.RECORDINGS_MASTER_KEYS = [("k-2027", b"p" * 32)]
    settings.AXES_FAILURE_LIMIT = 8
    settings.AXES_COOLOFF_TIME = timedelta(minutes=45)
    settings.SESSION_IDLE_TIMEOUT = 15 * 60
    settings.AUDIT_ANCHOR_KEY = settings.DEV_AUDIT_ANCHOR_KEY
    settings.STORAGES = {
        **settings.STORAGES,
        "recordings": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": "cc-recordings",
                "region_name": "ap-northeast-1",
                "secret_key": "do-not-print-me",
            },
        },
    }
    settings.CELERY_BEAT_SCHEDULE = {
        name: entry
        for name, entry in settings.CELERY_BEAT_SCHEDULE.items()
        if entry["task"] != "recordings.tasks.purge_recordings"
    }
    measures = section(public_page(client), "safety-measures")
    assert "使用中のマスター鍵（鍵ID）：k-2027" in measures
    assert "パスワードを8回誤るとアカウントを45分間ロック" in measures
    assert "操作が15分ないとログインが切れます" in measures
    assert "署名付きチェックポイント：未設定（開発用の鍵）" in measures
    assert "Amazon S3（バケット cc-recordings、リージョン ap-northeast-1）" in measures
    assert "do-not-print-me" not in measures
    assert "未設定削除します" in measures  # the purge is not scheduled: said so, not hidden


def test_a_development_master_key_is_said_to_be_one(client, v1, settings):
    settings.RECORDINGS_MASTER_KEYS = [("dev-1", b"d" * 32)]
    assert "開発用のマスター鍵が設定されています" in section(public_page(client), "safety-measures")


def test_an_older_version_says_the_public_matters_are_todays(client, quality, nine):
    v1 = published_notice(purposes=[quality])
    published_notice(purposes=[quality], effective_from=nine)  # v2, scheduled
    Organisation.objects.update(legal_name_ja="株式会社新社名")
    page = client.get(reverse("privacy:notice-detail", args=[v1.version])).text
    assert "株式会社新社名" in page
    assert "現在のもの" not in page  # v1 is still the one in force
    page = client.get(reverse("privacy:notice-detail", args=[v1.version + 1])).text
    assert "以下の事業者情報、手数料、安全管理措置、外国にある第三者は、現在のものです。" in page


def test_the_english_page_shows_the_english_labels(client, v1):
    Organisation.objects.update(legal_name_en="Sample Contact Center Co., Ltd.")
    client.post(reverse("set_language"), {"language": "en", "next": "/privacy/"})
    page = public_page(client)
    assert "Sample Contact Center Co., Ltd." in page
    assert "How we keep your personal data safe" in page
    assert "Disclosure: a copy of a recording" in page
    assert "<td>Free</td>" in page


# --- the notice JSON -----------------------------------------------------------------------


def test_the_json_carries_every_item_and_keeps_the_existing_keys(client, v1, settings):
    settings.RECORDINGS_MASTER_KEYS = [("k-2026", b"n" * 32)]
    Organisation.objects.update(fee_hear=500)
    response = client.get(reverse("privacy:notice-json", args=[v1.version]))
    data = json.loads(response.content)
    for existing in ("version", "url", "title", "body", "provider", "contact", "purposes"):
        assert existing in data
    assert data["organisation"]["legal_name"]["ja"] == "株式会社サンプルコールセンター"
    assert data["organisation"]["address"]["ja"] == "東京都千代田区丸の内一丁目1番1号"
    assert data["organisation"]["representative"] == {"title": "代表取締役", "name": "山田太郎"}
    assert data["complaints"]["phone"] == "0120-000-000"
    assert data["complaints"]["accredited_body"] is None
    kinds = {kind["code"]: kind for kind in data["requests"]["kinds"]}
    assert len(kinds) == 10
    assert kinds["hear"]["fee_yen"] == 500 and kinds["copy"]["fee_yen"] == 0
    assert kinds["delete"]["chargeable"] is False
    assert data["requests"]["portal"].endswith(reverse("portal:start"))
    assert [s["key"] for s in data["safety_measures"]["ja"]] == [
        "encryption",
        "retention",
        "audit",
        "twilio",
        "storage",
        "staff",
        "environment",
    ]
    assert data["safety_measures"]["ja"][0]["title"] == "録音の暗号化と鍵の管理"
    assert (
        data["safety_measures"]["en"][0]["title"] == "Encryption of recordings and key management"
    )
    configuration = data["safety_measures"]["configuration"]
    assert configuration["encryption"]["master_key_ids"] == ["k-2026"]
    assert configuration["staff"]["login_failure_limit"] == settings.AXES_FAILURE_LIMIT
    assert {"purpose": "quality", "usable_days": 365} in configuration["retention"]
    assert data["cross_border"][0]["recipient"] == "Twilio Inc."
    assert data["cross_border"][0]["country"] == "米国"
    assert data["cross_border"][0]["last_checked"] is None
    assert "n" * 20 not in response.content.decode()


# --- publishing refused while an item is missing ---------------------------------------------


def test_publishing_is_refused_naming_every_missing_item(quality, supervisor):
    notice = NoticeFactory(purposes=[quality])
    Organisation.objects.all().delete()
    CrossBorderRecipient.objects.all().delete()
    with pytest.raises(ValidationError) as refused:
        publish_notice(notice=notice, by=supervisor)
    message = " ".join(refused.value.messages)
    for item in (
        "事業者情報が保存されていません",
        "「名称」",
        "「住所」",
        "「代表者の役職と氏名」",
        "「苦情の申出先（部署と、電話番号またはメールアドレス）」",
        "外国にある第三者の台帳への提供先の登録",
    ):
        assert item in message, item
    notice.refresh_from_db()
    assert not notice.is_published


def test_only_what_is_still_missing_is_named(quality, supervisor):
    notice = NoticeFactory(purposes=[quality])
    Organisation.objects.update(address_ja="", complaint_phone="", complaint_email="")
    with pytest.raises(ValidationError) as refused:
        publish_notice(notice=notice, by=supervisor)
    message = " ".join(refused.value.messages)
    assert "「住所」" in message and "「苦情の申出先" in message
    assert (
        "「名称」" not in message and "台帳" not in message and "保存されていません" not in message
    )

    Organisation.objects.update(address_ja="大阪府大阪市北区1-1", complaint_email="a@example.jp")
    assert publish_notice(notice=notice, by=supervisor).is_published


def test_the_admin_publish_page_shows_what_is_missing(client, quality, supervisor):
    notice = NoticeFactory(purposes=[quality])
    CrossBorderRecipient.objects.all().delete()
    client.force_login(supervisor)
    url = reverse("admin:privacy_notice_publish", args=[notice.pk])
    response = client.post(url, {"confirm": "on"})
    assert response.status_code == 400
    assert "外国にある第三者の台帳への提供先の登録" in response.text
    notice.refresh_from_db()
    assert not notice.is_published


# --- the organisation settings in the admin ----------------------------------------------------


def organisation_form(**changes):
    fields = {
        "legal_name_ja": "株式会社サンプル",
        "legal_name_en": "",
        "address_ja": "東京都港区1-1",
        "address_en": "",
        "representative_title_ja": "代表取締役",
        "representative_name_ja": "佐藤花子",
        "complaint_department_ja": "個人情報相談窓口",
        "complaint_phone": "03-0000-0000",
        "complaint_email": "",
        "complaint_hours_ja": "",
        "accredited_body_name_ja": "",
        "accredited_body_contact_ja": "",
        "fee_purpose_notice": "0",
        "fee_hear": "0",
        "fee_copy": "0",
        "fee_provision_records": "0",
        "fee_payment_ja": "",
    }
    return {**fields, **changes}


def test_a_supervisor_fills_in_the_settings_once_and_the_change_is_audited(client, supervisor):
    client.force_login(supervisor)
    assert (
        reverse("admin:privacy_organisation_add")
        in client.get(reverse("admin:privacy_organisation_changelist")).text
    )
    response = client.post(reverse("admin:privacy_organisation_add"), organisation_form())
    assert response.status_code == 302
    stored = Organisation.objects.get()
    assert stored.updated_by == supervisor
    event = AccessEvent.objects.get(action=AccessEvent.Action.ORGANISATION_CHANGED)
    assert event.actor == supervisor and "legal_name_ja" in event.detail["fields"]

    # The list shows the one row; a second row cannot be added.
    change_url = reverse("admin:privacy_organisation_change", args=[stored.pk])
    listed = client.get(reverse("admin:privacy_organisation_changelist")).text
    assert change_url in listed and reverse("admin:privacy_organisation_add") not in listed
    assert client.get(reverse("admin:privacy_organisation_add")).status_code == 403

    response = client.post(change_url, organisation_form(fee_copy="800"))
    assert response.status_code == 302
    assert organisation.fee_for("copy") == 800
    latest = AccessEvent.objects.filter(action=AccessEvent.Action.ORGANISATION_CHANGED).last()
    assert latest.detail == {"fields": ["fee_copy"]}


def test_the_settings_cannot_be_deleted(client, supervisor, v1):
    client.force_login(supervisor)
    stored = Organisation.objects.get()
    response = client.post(reverse("admin:privacy_organisation_delete", args=[stored.pk]))
    assert response.status_code == 403
    assert Organisation.objects.exists()


def test_an_operator_cannot_open_or_change_the_settings(client, operator, v1):
    client.force_login(operator.user)
    stored = Organisation.objects.get()
    url = reverse("admin:privacy_organisation_change", args=[stored.pk])
    assert client.get(url).status_code == 403
    assert client.post(url, organisation_form(legal_name_ja="乗っ取り")).status_code == 403
    stored.refresh_from_db()
    assert stored.legal_name_ja == "株式会社サンプルコールセンター"


def test_the_service_refuses_a_role_without_the_permission(operator):
    with pytest.raises(NotAllowed):
        organisation.update_organisation(
            organisation=Organisation(legal_name_ja="x"),
            by=operator.user,
            changed_fields=["legal_name_ja"],
        )
    assert not Organisation.objects.exists()


def test_a_compliance_officer_may_change_the_settings(compliance_officer, v1):
    stored = organisation.current()
    stored.complaint_hours_ja = "平日 10:00〜16:00"
    organisation.update_organisation(
        organisation=stored, by=compliance_officer, changed_fields=["complaint_hours_ja"]
    )
    assert organisation.current().complaint_hours_ja == "平日 10:00〜16:00"


def test_a_published_notice_page_reads_the_settings_live(client, v1):
    Organisation.objects.update(address_ja="福岡県福岡市中央区2-2")
    assert "福岡県福岡市中央区2-2" in section(public_page(client), "business")
