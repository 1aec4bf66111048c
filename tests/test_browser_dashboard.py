"""In Chromium: the supervisor's dashboard renders under the CSP, its charts are drawn, and a
figure's link opens the admin list it counts; the staff header leads back to it."""

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from contactcenter.roles import SUPERVISOR

from .factories import CallFactory, UserFactory
from .helpers.browser import log_in
from .helpers.staff import acknowledged_operator

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


def test_the_dashboard_renders_and_its_links_open_the_lists(page, live_db, violations):
    operator = acknowledged_operator("op-dash")
    now = timezone.now()
    for _ in range(3):
        CallFactory(operator=operator, started_at=now, answered_at=now)
    UserFactory(username="supervisor-dash", roles=[SUPERVISOR])
    log_in(page, "supervisor-dash", "pass")

    page.goto("/admin/")
    page.locator(".dashboard-link a").click()
    expect(page.locator("#figure-calls td a").first).to_have_text("3")
    expect(page.locator("#calls-chart rect.bar")).to_have_count(30)
    box = page.locator("#calls-chart").bounding_box()
    assert box["width"] > 100 and box["height"] > 20

    page.locator("#figure-answered td a").first.click()
    expect(page.locator("#result_list tbody tr")).to_have_count(3)
    assert "/admin/contactcenter/call/" in page.url

    page.goto("/operator/calls/")
    page.locator('.staff-header a[href="/admin/dashboard/"]').click()
    expect(page.locator("#dashboard")).to_be_visible()
    assert violations == []
