"""In a real browser at 1280×900: every list of the admin fits the window without sideways
scrolling, and phone numbers, dates and lengths stay on one line."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from audit import services as audit
from audit.models import AccessEvent
from consent.models import ConsentRecord
from consent.services import record_consent
from recordings.models import Recording

from .factories import CallFactory, CustomerFactory, OperatorFactory, PurposeFactory, UserFactory
from .helpers.browser import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TOKYO = ZoneInfo("Asia/Tokyo")
LISTS = [
    "/admin/recordings/recording/",
    "/admin/audit/accessevent/",
    "/admin/contactcenter/call/",
    "/admin/consent/consentrecord/",
]


@pytest.fixture
def rows(live_db):
    PurposeFactory(code="lists-quality", name_ja="品質の向上", name_en="Service quality")
    for n in range(5):
        call = CallFactory(
            customer=CustomerFactory(phone_number=f"+8190{n:08d}"),
            operator=OperatorFactory(display_name=f"オペレーター佐藤{n}"),
            started_at=datetime(2027, 2, 23, 9 + n, 30, tzinfo=TOKYO),
            duration=842,
        )
        recording = Recording.objects.create(
            sid=f"RE{n:032x}", call=call, status=Recording.Status.COMPLETED, duration=842
        )
        record_consent(
            customer=call.customer,
            call=call,
            party_role=ConsentRecord.PartyRole.CALLER,
            decision=ConsentRecord.Decision.GRANTED,
            method=ConsentRecord.Method.IVR_KEYPRESS,
            digits="1",
        )
        audit.record(
            AccessEvent.Action.PLAYBACK,
            actor_label=f"customer {call.from_number}",
            recording=recording,
            purpose="lists-quality",
            detail={"channel": "phone", "reason": "お客様ご本人からの請求による再生"},
        )
    UserFactory(username="root", password="root-pass-1234", is_superuser=True)


def one_line(page, selector):
    """Every matching element is as tall as one line of its own text."""
    return page.evaluate(
        """(selector) => [...document.querySelectorAll(selector)].every((element) => {
            const lineHeight = parseFloat(getComputedStyle(element).lineHeight) || 20;
            return element.getBoundingClientRect().height <= lineHeight * 1.5;
        })""",
        selector,
    )


@pytest.mark.parametrize("url", LISTS)
def test_each_list_fits_1280_px_with_numbers_on_one_line(page, rows, url):
    log_in(page, "root", "root-pass-1234")
    page.goto(url)
    page.locator("#result_list tbody tr").first.wait_for()
    assert page.locator("#result_list tbody tr").count() == 5
    table_width = page.evaluate("document.querySelector('#result_list').scrollWidth")
    window_width = page.evaluate("window.innerWidth")
    assert table_width <= window_width, (url, table_width, window_width)
    # Nothing of the page scrolls sideways either, nor the list inside its own box.
    assert page.evaluate("document.documentElement.scrollWidth") <= window_width
    box = page.evaluate(
        "(() => { const r = document.querySelector('#changelist .results');"
        " return [r.scrollWidth, r.clientWidth]; })()"
    )
    assert box[0] <= box[1], (url, box)
    assert page.locator("#result_list span.nowrap").count() >= 5
    assert one_line(page, "#result_list span.nowrap")
