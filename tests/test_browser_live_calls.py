"""In a real browser, during a call driven through the Twilio emulator: the operator pauses,
resumes and stops the recording from the 通話中 page, and Twilio is told each time."""

import pytest
from django.conf import settings
from playwright.sync_api import expect

from contactcenter.models import Call, CallEvent
from twilio_emulator import CallDriver

from .factories import PurposeFactory, published_notice
from .helpers.browser import log_in
from .helpers.staff import acknowledged_operator

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_operator_pauses_resumes_and_stops_the_recording_of_a_live_call(
    page, live_server, live_db, twilio
):
    published_notice(purposes=[PurposeFactory()])
    operator = acknowledged_operator("op")
    driver = CallDriver(
        app_url=live_server.url,
        public_base_url=settings.PUBLIC_BASE_URL,
        account_sid=settings.TWILIO_ACCOUNT_SID,
        auth_token=settings.TWILIO_AUTH_TOKEN,
        emulator_url=twilio.url,
    )
    call = driver.run(digits="1", hold=True)
    recording = twilio.state.recordings[call.recording_sid]

    log_in(page, "op", "pass")
    page.goto("/operator/calls/")
    expect(page.get_by_role("heading", name="通話中")).to_be_visible()
    row = page.locator(f"#call-{call.call_sid}")
    expect(row).to_contain_text("録音中")

    row.get_by_role("button", name="一時停止", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("一時停止中")
    assert recording["status"] == "paused"

    row.get_by_role("button", name="再開").click()
    expect(row).to_contain_text("録音中")
    assert recording["status"] == "in-progress"

    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="停止", exact=True).click()
    expect(row).to_contain_text("停止")
    expect(row.get_by_role("button")).to_have_count(0)
    assert recording["status"] == "stopped"

    driver.hang_up(call)
    stored = Call.objects.get(sid=call.call_sid)
    assert stored.status == Call.Status.COMPLETED
    assert list(stored.events.filter(actor=operator.user).values_list("kind", flat=True)) == [
        CallEvent.Kind.RECORDING_PAUSED,
        CallEvent.Kind.RECORDING_RESUMED,
        CallEvent.Kind.RECORDING_STOPPED,
    ]
