"""In a real browser, one of the new kinds of request end to end: a caller proves their mobile
number, asks to be told the purposes of use (利用目的の通知); a supervisor grants it in the
queue, where the art. 39 two-week mark is shown; the SMS brings the link to the written
decision, which the caller opens without logging in and reads in Japanese."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from contactcenter.roles import SUPERVISOR
from portal.models import CustomerRequest, DecisionNotice

from .factories import PurposeFactory, UserFactory, published_notice
from .helpers.browser import log_in
from .helpers.staff import acknowledged_operator
from .test_playback import stored_recording

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NUMBER = "+819011112222"


@pytest.fixture(autouse=True)
def _fresh_limits(portal_codes):
    """Codes through the Twilio emulator, and the portal's limits fresh (conftest)."""


@pytest.fixture
def caller(live_db):
    published_notice(
        purposes=[
            PurposeFactory(
                code="quality",
                name_ja="品質向上",
                description_ja="応対品質の確認と改善のため",
                retention_days=30,
            )
        ]
    )
    recording = stored_recording(acknowledged_operator("op-k"))
    customer = recording.call.customer
    customer.phone_number = NUMBER
    customer.save()
    return customer


@pytest.fixture
def supervisor(live_db):
    return UserFactory(username="supervisor-k", roles=[SUPERVISOR])


@pytest.fixture
def supervisor_page(chromium, live_server):
    context = chromium.new_context(
        base_url=live_server.url, viewport={"width": 1280, "height": 900}
    )
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


def sms_to(twilio, count):
    messages = [message for message in twilio.state.messages if message["to"] == NUMBER]
    assert len(messages) == count, twilio.state.messages
    return messages


def test_a_caller_is_told_the_purposes_and_reads_the_written_decision(
    page, supervisor_page, twilio, caller, supervisor
):
    # The caller proves the number.
    page.goto("/requests/")
    expect(page.locator("body")).to_contain_text("（利用目的の通知）")
    page.get_by_label("お電話をおかけになった電話番号").fill("090-1111-2222")
    page.get_by_role("radio", name="SMS").check()
    page.get_by_role("button", name="コードを送る").click()
    code = re.search(r"\b(\d{6})\b", sms_to(twilio, 1)[0]["body"]).group(1)
    page.get_by_label("6桁の確認コード").fill(code)
    page.get_by_role("button", name="確認").click()
    expect(page).to_have_url(re.compile(r"/requests/mine/(#.*)?$"))

    # Notification of purposes is about the person: no call to choose.
    page.get_by_role("radio", name="利用目的を知らせてほしい（利用目的の通知）").check()
    page.get_by_role("button", name="請求を送る").click()
    expect(page).to_have_url(re.compile(r"/requests/sent/(#.*)?$"))
    made = CustomerRequest.objects.get()
    assert (made.kind, made.status) == ("purpose_notice", "received")
    expect(page.get_by_role("status")).to_contain_text(made.reference)

    # The supervisor sees the art. 39 mark and grants the request.
    log_in(supervisor_page, "supervisor-k", "pass")
    supervisor_page.goto("/admin/portal/customerrequest/")
    row = supervisor_page.locator("#result_list tbody tr", has_text=made.reference)
    mark = timezone.localtime(made.created_at + timedelta(days=14)).strftime("%Y-%m-%d")
    expect(row).to_contain_text(mark)
    row.locator("input[name=_selected_action]").check()
    supervisor_page.locator("select[name=action]").select_option(label="請求に応じて対応する…")
    supervisor_page.get_by_role("button", name="実行").click()
    supervisor_page.get_by_label("理由").fill("電話番号の確認により本人と確認")
    supervisor_page.get_by_role("button", name="請求に応じて対応する").click()
    expect(supervisor_page.locator(".messagelist")).to_contain_text(made.reference)
    made.refresh_from_db()
    assert made.status == "done"
    assert DecisionNotice.objects.get(request=made).decision == "granted"

    # The SMS brings the written decision; the caller reads it in Japanese, no login.
    body = sms_to(twilio, 2)[-1]["body"]
    link = re.search(r"https?://\S+/requests/decision/[^/\s]+/", body).group(0)
    path = "/" + link.split("://", 1)[1].split("/", 1)[1]
    reader = page.context.browser.new_context(base_url=page.url.split("/requests")[0])
    fresh = reader.new_page()
    fresh.goto(path)
    expect(fresh.locator("html")).to_have_attribute("lang", "ja")
    expect(fresh.get_by_role("heading", level=1)).to_have_text("ご請求に対する決定の通知")
    notice = fresh.locator("dl.decision-notice")
    expect(notice).to_contain_text("個人情報保護法第32条第2項")
    expect(notice).to_contain_text("品質向上")
    expect(notice).to_contain_text("通話から30日まで利用")
    expect(notice).to_contain_text("電話番号の確認により本人と確認")
    expect(notice).to_contain_text("お客様相談窓口")
    reader.close()
