"""In a real browser, in Japanese: axe-core (tests/vendor/axe-core) finds no serious or
critical accessibility violation on any public or staff page, with rows on every list, on a
phone and on a desktop, in the admin's light and dark themes."""

import re
import secrets
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.utils import timezone

from audit import services as audit
from audit.models import AccessEvent
from consent.models import ConsentRecord
from contactcenter.models import Call
from contactcenter.roles import OPERATOR, SUPERVISOR
from portal import decisions, requests
from portal.models import CustomerRequest, ListeningLink
from training import services as training
from training.models import ScorecardCriterion

from .factories import CallFactory, OperatorFactory, UserFactory, recording_notice
from .helpers.browser import axe_violations, log_in
from .helpers.portal import find_call_in_page
from .helpers.second_factor import totp_device
from .helpers.staff import acknowledged_operator
from .test_playback import stored_recording

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NUMBER = "+819011112222"
AS_TYPED = "090-1111-2222"
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def site(live_db, twilio, settings):
    """A published notice; an operator's three stored recordings (the first of a call from
    NUMBER, the second reviewed for training) with their consent and audit rows; a call in
    progress; a request waiting in the queue and a granted one with its listening link; a
    supervisor with an authenticator, and staff who have not set things up yet."""
    settings.TWILIO_VERIFY_SERVICE_SID = ""  # the portal's codes go by SMS, to the emulator
    cache.clear()
    recording_notice()
    operator = acknowledged_operator("op-a11y")
    supervisor = UserFactory(username="supervisor-a11y", roles=[SUPERVISOR])
    totp_device(supervisor)
    UserFactory(username="new-supervisor", roles=[SUPERVISOR])
    OperatorFactory(user=UserFactory(username="new-operator", roles=[OPERATOR]))

    recordings = [stored_recording(operator) for _ in range(3)]
    customer = recordings[0].call.customer
    customer.phone_number = NUMBER
    customer.save()
    for recording in recordings:
        audit.record(
            AccessEvent.Action.PLAYBACK,
            actor=supervisor,
            recording=recording,
            purpose="quality",
            detail={"channel": "web"},
        )
    ScorecardCriterion.objects.create(name="傾聴", description="お客様の話を遮らない")
    training.save_review(
        recording=recordings[1],
        operator=operator,
        notes="保留の前に理由をお伝えした",
        self_evaluation="落ち着いて対応できた",
        self_rating=4,
    )
    CallFactory(
        operator=operator,
        status=Call.Status.IN_PROGRESS,
        recording_state=Call.RecordingState.RECORDING,
        started_at=timezone.now() - timedelta(minutes=3),
    )
    waiting = CustomerRequest.objects.create(
        phone_number=NUMBER,
        customer=customer,
        kind=CustomerRequest.Kind.HEAR,
        due_at=timezone.now() + timedelta(days=7),
        message="先月の通話を聞きたいです",
    )
    waiting.calls.add(recordings[0].call)
    granted = CustomerRequest.objects.create(
        phone_number=NUMBER,
        customer=customer,
        kind=CustomerRequest.Kind.HEAR,
        due_at=timezone.now() + timedelta(days=7),
        status=CustomerRequest.Status.DONE,
    )
    token = secrets.token_urlsafe(24)
    link = ListeningLink.objects.create(
        request=granted,
        recording=recordings[0],
        token_hash=requests.token_hash(token),
        expires_at=timezone.now() + timedelta(hours=48),
        max_plays=3,
    )
    yield {
        "twilio": twilio,
        "call": recordings[0].call,
        "recording": recordings[0],
        "reviewed": recordings[1],
        "request": waiting,
        "link": link,
        "token": token,
    }
    cache.clear()


def assert_accessible(page):
    """The page is in Japanese, a list of the admin on it has rows, and axe-core finds
    nothing serious or critical on it."""
    page.wait_for_load_state("networkidle")
    assert page.locator("html").get_attribute("lang") == "ja"
    if page.locator("#result_list").count():
        assert page.locator("#result_list tbody tr").count() >= 1, page.url
    found = axe_violations(page)
    assert not found, "\n".join(
        f"{v['id']} ({v['impact']}): {v['help']}: {' | '.join(v['targets'])}" for v in found
    )


# --- public pages: each reached as a caller would, from a fresh browser --------------------


def ask_for_a_code(page, site):
    page.goto("/requests/")
    page.get_by_label("お電話をおかけになった電話番号").fill(AS_TYPED)
    page.get_by_role("radio", name="SMS").check()
    page.get_by_role("button", name="コードを送る").click()
    page.wait_for_url(re.compile(r"/requests/verify/"))


def prove_the_number(page, site):
    ask_for_a_code(page, site)
    [sms] = [message for message in site["twilio"].state.messages if message["to"] == NUMBER]
    page.get_by_label("6桁の確認コード").fill(re.search(r"\b(\d{6})\b", sms["body"]).group(1))
    page.get_by_role("button", name="確認").click()
    page.wait_for_url(re.compile(r"/requests/mine/"))


def enter_a_wrong_code(page, site):
    ask_for_a_code(page, site)
    page.get_by_label("6桁の確認コード").fill("000000")
    page.get_by_role("button", name="確認").click()
    page.get_by_role("alert").wait_for()


def send_without_a_number(page, site):
    page.goto("/requests/")
    page.get_by_role("button", name="コードを送る").click()
    page.get_by_role("alert").first.wait_for()


def send_a_request(page, site):
    prove_the_number(page, site)
    find_call_in_page(page, site["call"])
    started = timezone.localtime(site["call"].started_at).strftime("%Y-%m-%d %H:%M")
    page.get_by_role("group", name="対象の通話").get_by_label(started).check()
    page.get_by_role("radio", name="録音を聞きたい").check()
    page.get_by_role("button", name="請求を送る").click()
    page.wait_for_url(re.compile(r"/requests/sent/"))


def open_a_used_up_link(page, site):
    ListeningLink.objects.filter(pk=site["link"].pk).update(plays=3)
    page.goto(f"/requests/listen/{site['token']}/")


def open_a_link_from_your_calls(page, site):
    prove_the_number(page, site)
    page.goto(f"/requests/mine/links/{site['link'].pk}/")
    page.get_by_role("heading", level=1).wait_for()


def open_a_written_decision(page, site):
    granted = site["link"].request
    notice = decisions.issue(
        granted,
        decision="granted",
        by=get_user_model().objects.get(username="supervisor-a11y"),
        reasons="ご本人の通話であることを確認しました。",
        answer="録音を48時間、3回までお聞きいただけます。",
    )
    page.goto("/" + decisions.notice_url(notice).split("://", 1)[1].split("/", 1)[1])
    page.get_by_role("heading", level=1).wait_for()


def go(path):
    return lambda page, site: page.goto(path)


PUBLIC_PAGES = {
    "/ (the privacy notice)": go("/"),
    "earlier notices": go("/privacy/notices/"),
    "a notice's version": go("/privacy/notices/1/"),
    "portal: the number": go("/requests/"),
    "portal: the number, not given": send_without_a_number,
    "portal: the code": ask_for_a_code,
    "portal: a wrong code": enter_a_wrong_code,
    "portal: the proven number's calls": prove_the_number,
    "portal: the request sent": send_a_request,
    "portal: a listening link": lambda page, site: page.goto(f"/requests/listen/{site['token']}/"),
    "portal: a used-up listening link": open_a_used_up_link,
    "portal: a recording opened from the proven number's calls": open_a_link_from_your_calls,
    "portal: a written decision": open_a_written_decision,
    "404": go("/no-such-page/"),
    "403": go("/requests/phone-audio/not-signed/"),
}


@pytest.mark.parametrize("window", ["phone", "desktop"])
@pytest.mark.parametrize("name", PUBLIC_PAGES)
def test_public_pages_have_no_serious_or_critical_violation(axe_page, site, name, window):
    if window == "phone":
        axe_page.set_viewport_size(PHONE)
    PUBLIC_PAGES[name](axe_page, site)
    assert_accessible(axe_page)


# --- staff pages: each reached by the person whose page it is ------------------------------


def up_to_the_code(username):
    def reach(page, site):
        page.goto("/admin/login/")
        page.get_by_label("ユーザー名").fill(username)
        page.get_by_label("パスワード").fill("pass")
        page.get_by_role("button", name="ログイン").click()
        page.wait_for_load_state()

    return reach


def wrong_password(page, site):
    page.goto("/admin/login/")
    page.get_by_label("ユーザー名").fill("supervisor-a11y")
    page.get_by_label("パスワード").fill("not-the-password")
    page.get_by_role("button", name="ログイン").click()
    page.locator(".errornote").wait_for()


def as_(username, path):
    """Log in as ``username`` and open ``path`` (a function of the site's rows, or a path)."""

    def reach(page, site):
        log_in(page, username, "pass")
        page.goto(path(site) if callable(path) else path)
        assert "/admin/login/" not in page.url, page.url

    return reach


def supervisor(path):
    return as_("supervisor-a11y", path)


def operator(path):
    return as_("op-a11y", path)


def change(model, row):
    return lambda site: f"/admin/{model}/{row(site).pk}/change/"


STAFF_PAGES = {
    "admin login": go("/admin/login/"),
    "admin login, wrong password": wrong_password,
    "second factor: the code": up_to_the_code("supervisor-a11y"),
    "second factor: enrolment": up_to_the_code("new-supervisor"),
    "admin index": supervisor("/admin/"),
    "dashboard": supervisor("/admin/dashboard/"),
    "compliance report": supervisor("/admin/dashboard/compliance/"),
    "calls": supervisor("/admin/contactcenter/call/"),
    "a call": supervisor(change("contactcenter/call", lambda site: site["call"])),
    "recordings": supervisor("/admin/recordings/recording/"),
    "a recording": supervisor(change("recordings/recording", lambda site: site["recording"])),
    "consent records": supervisor("/admin/consent/consentrecord/"),
    "a consent record": supervisor(
        change("consent/consentrecord", lambda site: ConsentRecord.objects.first())
    ),
    "audit events": supervisor("/admin/audit/accessevent/"),
    "an audit event": supervisor(
        change("audit/accessevent", lambda site: AccessEvent.objects.first())
    ),
    "customer requests": supervisor("/admin/portal/customerrequest/"),
    "a customer request": supervisor(
        change("portal/customerrequest", lambda site: site["request"])
    ),
    "notices": supervisor("/admin/privacy/notice/"),
    "supervisor: live calls": supervisor("/operator/calls/"),
    "supervisor: reviews awaiting feedback": supervisor("/operator/training/awaiting-feedback/"),
    "supervisor: a review, with the feedback form": supervisor(
        lambda site: f"/operator/training/{site['reviewed'].pk}/"
    ),
    "operator: my calls": operator("/admin/contactcenter/call/"),
    "operator: a call of mine": operator(change("contactcenter/call", lambda site: site["call"])),
    "operator: live calls": operator("/operator/calls/"),
    "operator: training review list": operator("/operator/training/"),
    "operator: my review": operator(lambda site: f"/operator/training/{site['reviewed'].pk}/"),
    "operator: the recording acknowledgement": as_(
        "new-operator", "/operator/recording-acknowledgement/"
    ),
    "operator: 403 of the admin": operator("/admin/auth/user/"),
}


@pytest.mark.parametrize("name", STAFF_PAGES)
def test_staff_pages_have_no_serious_or_critical_violation(axe_page, site, name):
    STAFF_PAGES[name](axe_page, site)
    assert_accessible(axe_page)


DARK_ADMIN_PAGES = ["admin login", "admin index", "dashboard", "calls", "a recording"]


@pytest.mark.parametrize("name", DARK_ADMIN_PAGES)
def test_the_admin_in_its_dark_theme_has_no_serious_or_critical_violation(axe_page, site, name):
    """Django's admin follows the system's dark mode; so must its contrast."""
    axe_page.emulate_media(color_scheme="dark")
    STAFF_PAGES[name](axe_page, site)
    assert_accessible(axe_page)


def test_the_check_reports_what_a_page_gets_wrong(axe_page, site):
    """The check is not vacuous: an image without a text alternative and a field without a
    label, added to a page, are reported (critical) with where they are."""
    axe_page.goto("/privacy/")
    axe_page.evaluate(
        """() => {
            const main = document.querySelector("main");
            main.insertAdjacentHTML("beforeend",
                '<img id="no-alt" src="/static/admin/img/search.svg">'
                + '<input id="no-label" type="text">');
        }"""
    )
    found = {violation["id"]: violation for violation in axe_violations(axe_page)}
    assert set(found) == {"image-alt", "label"}
    assert found["image-alt"]["targets"] == ["#no-alt"]
    assert found["label"]["impact"] == "critical"
