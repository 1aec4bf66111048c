"""In Chromium: a compliance officer records a breach, scopes it from the system, sees its
report clocks on its page and on the dashboard; the incident page and the public notice pass
the axe-core check."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from contactcenter.roles import COMPLIANCE
from incidents import services
from incidents.models import Incident
from recordings.models import Recording

from .factories import UserFactory, stored_recording
from .helpers.browser import axe_violations, log_in
from .helpers.staff import acknowledged_operator

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def roles(live_db):
    """The incidents' own grants (``tests.helpers.staff.restore_roles`` predates the app)."""
    import importlib

    from django.apps import apps

    importlib.import_module("incidents.migrations.0002_roles").create_roles(apps, None)


def test_an_officer_records_scopes_and_sees_the_deadlines(page, roles):
    recording = stored_recording(acknowledged_operator("op-inc"), audio=b"RIFF" + b"\x00" * 2000)
    # Stored before the laptop was lost: in the storage at the time.
    Recording.objects.filter(pk=recording.pk).update(stored_at=timezone.now() - timedelta(days=3))
    UserFactory(username="officer-inc", roles=[COMPLIANCE])
    log_in(page, "officer-inc", "pass")

    page.goto("/admin/incidents/incident/add/")
    page.locator("input[name=title]").fill("監督者のノートPC紛失")
    page.locator("textarea[name=description]").fill("電車内でノートPCを紛失した。")
    known = timezone.localtime() - timedelta(days=1)
    page.locator("input[name=became_known_at]").fill(known.strftime("%Y-%m-%dT%H:%M"))
    page.locator("select[name=cause]").select_option("loss_or_theft")
    page.locator("input[name=category_unlawful]").check()
    page.locator("input[name=_continue]").click()

    incident = Incident.objects.get()
    assert incident.reference.startswith("INC-")
    expect(page.locator("#clock-preliminary")).to_be_visible()
    expect(page.locator("#clock-final .days-left")).to_contain_text("59")

    page.locator("#scope-now").click()
    expect(page.locator("#scoped-recordings")).to_have_text("1")
    expect(page.locator("#scoped-persons")).to_have_text("1")

    page.goto("/admin/dashboard/")
    row = page.locator(f"#incident-{incident.reference}")
    expect(row).to_be_visible()
    expect(row).to_contain_text("あと 4 日")


def test_the_incident_page_and_the_public_notice_pass_axe(axe_page, roles):
    officer = UserFactory(username="officer-axe", roles=[COMPLIANCE])
    incident = services.record_incident(
        incident=Incident(
            title="誤送付",
            description="録音ファイルを誤って外部に送付した。",
            became_known_at=timezone.now() - timedelta(days=2),
            category_financial=True,
            public_notice_text="当社が保有する通話録音の一部が外部に送付されたおそれがあります。",
        ),
        by=officer,
    )
    services.publish_notice(incident=incident, by=officer)
    log_in(axe_page, "officer-axe", "pass")

    axe_page.goto(f"/admin/incidents/incident/{incident.pk}/change/")
    expect(axe_page.locator("#incident-clocks")).to_be_visible()
    assert axe_violations(axe_page) == []

    axe_page.goto(f"/incidents/{incident.reference}/notice/")
    expect(axe_page.locator("#incident-notice")).to_contain_text("外部に送付されたおそれ")
    assert axe_violations(axe_page) == []
