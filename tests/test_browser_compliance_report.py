"""In Chromium, in Japanese: a compliance officer opens the compliance report from the
dashboard, sees a section per rule with its figures, downloads the PDF (which reads back with
every section), and axe-core finds no serious or critical violation on the page."""

import importlib
from datetime import timedelta

import pypdf
import pytest
from django.apps import apps
from django.utils import timezone
from playwright.sync_api import expect

from audit.models import AccessEvent
from backoffice import report_pdf
from consent.models import ConsentRecord
from consent.services import record_consent
from contactcenter.roles import COMPLIANCE

from .factories import CallFactory, UserFactory, recording_notice
from .helpers.browser import axe_violations, log_in
from .helpers.staff import acknowledged_operator
from .test_compliance_report import SECTION_TITLES_JA, require_fonts

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ROLES = importlib.import_module("backoffice.migrations.0002_compliance_report_roles")


@pytest.fixture
def last_month(live_db):
    """Calls of the last full month, one consented and one refused; the report's permission
    given again (the tables were emptied before the test)."""
    ROLES.create_roles(apps, None)
    recording_notice()
    operator = acknowledged_operator("op-report")
    middle = timezone.localtime().replace(day=1, hour=12) - timedelta(days=15)
    for decision in (ConsentRecord.Decision.GRANTED, ConsentRecord.Decision.REFUSED):
        call = CallFactory(operator=operator, started_at=middle, answered_at=middle)
        record_consent(
            customer=call.customer,
            call=call,
            party_role=ConsentRecord.PartyRole.CALLER,
            decision=decision,
            method=ConsentRecord.Method.IVR_KEYPRESS,
            announcement_text="録音します",
            recorded_by_system="twilio-ivr",
            at=middle,
        )
    UserFactory(username="compliance-report", roles=[COMPLIANCE])
    return report_pdf.last_full_month()


def test_a_compliance_officer_reads_and_downloads_the_report(axe_page, last_month):
    require_fonts()
    page = axe_page
    log_in(page, "compliance-report", "pass")
    page.goto("/admin/dashboard/")
    page.locator("#compliance-report-link a").click()
    expect(page.locator("#section-R1")).to_be_visible()
    for rule in SECTION_TITLES_JA:
        expect(page.locator(f"#title-{rule}")).to_contain_text(rule)
    expect(page.locator("#section-AUDIT h2")).to_contain_text("監査証跡")
    expect(page.locator("#period-from")).to_have_value(last_month.first_day.isoformat())
    calls = page.locator("#section-R3 tr", has_text="通話").first
    expect(calls.locator("td.value")).to_have_text("2")
    expect(page.locator("#section-R3 svg.chart")).to_be_visible()
    assert axe_violations(page) == []

    with page.expect_download() as download:
        page.locator("#download-pdf").click()
    pdf = download.value
    assert pdf.suggested_filename.endswith(".pdf")
    reader = pypdf.PdfReader(pdf.path())
    text = "\n".join(one.extract_text() for one in reader.pages)
    assert "コンプライアンス報告書" in text
    for rule in SECTION_TITLES_JA:
        assert rule in text
    formats = list(
        AccessEvent.objects.filter(action=AccessEvent.Action.COMPLIANCE_REPORT)
        .order_by("seq")
        .values_list("detail__format", flat=True)
    )
    assert formats == ["page", "pdf"]


def test_the_report_page_keeps_to_the_content_security_policy(page, last_month):
    """Its style sheet and the charts drawn on the server need nothing the policy forbids."""
    violations = []
    page.on(
        "console",
        lambda message: (
            violations.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    log_in(page, "compliance-report", "pass")
    page.goto("/admin/dashboard/compliance/")
    expect(page.locator("#section-R3 svg.chart")).to_be_visible()
    value = page.locator("#section-R1 td.value").first
    assert value.evaluate("cell => getComputedStyle(cell).textAlign") == "right"  # its CSS
    assert violations == []
