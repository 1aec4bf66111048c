"""In a real browser: a caller reads why calls are recorded; a supervisor publishes v2 and v1
stays readable; a new operator acknowledges recording on their first page."""

import re

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from consent.models import ConsentRecord
from contactcenter.roles import OPERATOR
from privacy.models import Notice

from .factories import OperatorFactory, UserFactory
from .helpers.browser import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def demo(live_db):
    call_command("seed_demo")


def test_a_caller_reads_the_notice_on_a_phone_in_japanese_then_english(page, demo):
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/privacy/")
    expect(page.locator("html")).to_have_attribute("lang", "ja")
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "通話録音と録音データの取り扱いについて"
    )
    expect(page.get_by_role("heading", name="研修")).to_be_visible()
    expect(page.get_by_text("この目的での録音の利用は、通話日から90日間です。")).to_be_visible()
    expect(page.get_by_role("link", name="請求する")).to_have_attribute("href", "/requests/")
    # Nothing overflows a phone screen sideways.
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390

    page.get_by_label("言語").select_option("en")
    page.get_by_role("button", name="変更").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(
        page.get_by_role("heading", name="Why we record calls, and for how long")
    ).to_be_visible()
    expect(page.get_by_role("heading", name="operator training")).to_be_visible()


def test_a_supervisor_publishes_v2_and_v1_stays_readable(page, demo):
    log_in(page, "supervisor", "demo-supervisor-pass")
    expect(page.locator("#site-name")).to_have_text("通話録音コンプライアンス管理")
    v1 = Notice.objects.get(version=1)

    page.goto(f"/admin/privacy/notice/{v1.pk}/change/")
    page.get_by_role("button", name="この版から新しい下書きを作成").click()
    expect(page.locator("#id_body_ja")).to_be_visible()
    page.locator("#id_body_ja").fill("第2版の本文です。録音の利用目的を見直しました。")
    page.get_by_role("button", name="保存して編集を続ける").click()
    expect(page.locator(".messagelist")).to_contain_text("変更しました")

    page.get_by_role("link", name="プレビュー").click()
    expect(page.get_by_text("この下書きは公開されていません")).to_be_visible()
    page.go_back()

    page.get_by_role("link", name="公開…").click()
    expect(page.get_by_text("この通知は第 2 版になります")).to_be_visible()
    page.get_by_label("通知と案内文を確認し、公開します。").check()
    page.get_by_role("button", name="公開").click()
    expect(page.locator(".messagelist")).to_contain_text("通知を v2 として公開しました")

    page.goto("/privacy/")
    expect(page.get_by_text("第2版の本文です。")).to_be_visible()
    expect(page.locator(".badge")).to_contain_text("v2")

    page.goto("/privacy/notices/1/")
    expect(page.get_by_text("これは第 1 版で、現在は適用されていません。")).to_be_visible()
    expect(page.get_by_text("当社のお客様相談窓口では")).to_be_visible()
    page.goto("/privacy/notices/")
    expect(page.get_by_role("link", name="v1")).to_be_visible()
    expect(page.get_by_role("link", name="v2")).to_be_visible()


def test_a_new_operator_acknowledges_recording_on_their_first_page(page, demo):
    OperatorFactory(
        user=UserFactory(username="newcomer", roles=[OPERATOR]), display_name="山田 花子"
    )
    log_in(page, "newcomer", "pass")
    expect(page).to_have_url(re.compile(r"/operator/recording-acknowledgement/"))
    expect(page.get_by_role("heading", name="通話は録音されます")).to_be_visible()
    expect(page.get_by_text("山田 花子 さん")).to_be_visible()

    page.get_by_role("button", name="確認").click()
    expect(page.get_by_role("alert")).to_contain_text("チェックを入れてください")
    page.get_by_label("通話がこれらの目的で録音されることを理解しました。").check()
    page.get_by_role("button", name="確認").click()
    expect(page).to_have_url(re.compile(r"/admin/$"))
    record = ConsentRecord.objects.get(operator__user__username="newcomer")
    assert record.method == ConsentRecord.Method.WEB_FORM
    assert record.decision == ConsentRecord.Decision.GRANTED
