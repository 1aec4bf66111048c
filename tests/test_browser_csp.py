"""In a real browser, under the Content-Security-Policy: Django's admin, our admin additions,
the public pages and the operators' pages load without a single violation, their styles
apply, and the scripts moved out of the templates still work (the admin's language switch,
the confirmation before stopping a recording)."""

import pytest

from contactcenter.models import Call
from contactcenter.roles import SUPERVISOR

from .factories import UserFactory, recording_notice
from .helpers.browser import log_in
from .helpers.staff import acknowledged_operator
from .test_playback import stored_recording

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def violations(page):
    """Every CSP violation the browser reports on the console, as text."""
    found = []
    page.on(
        "console",
        lambda message: (
            found.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    return found


def test_the_admin_and_the_public_pages_run_under_the_policy(page, live_db, violations):
    recording_notice()
    operator = acknowledged_operator("op-csp")
    recording = stored_recording(operator)
    UserFactory(username="supervisor-csp", roles=[SUPERVISOR])

    page.goto("/privacy/")
    # The public stylesheet applies: the header has the accent colour of public.css.
    assert page.evaluate("getComputedStyle(document.querySelector('header')).backgroundColor") == (
        "rgb(11, 79, 138)"
    )
    log_in(page, "supervisor-csp", "pass")
    for url in (
        "/admin/",
        "/admin/privacy/notice/",
        "/admin/audit/accessevent/",
        f"/admin/contactcenter/call/{recording.call.pk}/change/",
        f"/admin/recordings/recording/{recording.pk}/change/",
    ):
        page.goto(url)
        page.wait_for_load_state("networkidle")
    # The language switch submits itself on change (language-switch.js, not onchange=).
    page.goto("/admin/")
    with page.expect_navigation():
        page.select_option("#language-switch-select", "en")
    assert page.locator("html").get_attribute("lang") == "en"

    assert violations == []


def test_stopping_a_recording_still_asks_first(page, live_db, violations):
    operator = acknowledged_operator("op-stop")
    recording_notice()
    call = stored_recording(operator).call
    Call.objects.filter(pk=call.pk).update(
        status=Call.Status.IN_PROGRESS, recording_state=Call.RecordingState.RECORDING
    )
    log_in(page, operator.user.username, "pass")
    page.goto("/operator/calls/")
    asked = []
    page.on("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))

    page.locator(f"#call-{call.sid} button[value=stop]").click()

    assert len(asked) == 1
    call.refresh_from_db()
    assert call.recording_state == Call.RecordingState.RECORDING  # dismissed: not stopped
    assert violations == []
