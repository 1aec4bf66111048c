"""The cross-border register (外国にある第三者, APPI art. 28): each check of a recipient's
measures is recorded and audited and moves the next one on; staff are reminded once before a
check is due; the public summary is what the page and a 28(3) answer state."""

from datetime import date, timedelta

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from audit.models import AccessEvent
from contactcenter.roles import NotAllowed
from privacy import crossborder
from privacy.models import CrossBorderCheck, CrossBorderRecipient
from privacy.tasks import remind_cross_border_checks

from .factories import published_notice

pytestmark = pytest.mark.django_db

CONFIRMED = CrossBorderCheck.Result.CONFIRMED


@pytest.fixture
def twilio_row():
    return CrossBorderRecipient.objects.create(
        recipient="Twilio Inc.",
        country_ja="米国",
        services_ja="音声通話・録音・SMS",
        measures_ja="データ処理契約（DPA）を締結しています。",
        evidence="Twilio Data Protection Addendum https://www.twilio.com/legal/data-protection-addendum",
    )


@pytest.fixture
def staff(supervisor, compliance_officer, operator):
    supervisor.email = "supervisor@example.jp"
    supervisor.save()
    compliance_officer.email = "compliance@example.jp"
    compliance_officer.save()
    operator.user.email = "operator@example.jp"
    operator.user.save()
    return supervisor


def check(row, by, on, **fields):
    return crossborder.record_check(
        recipient=row,
        by=by,
        checked_on=on,
        scope=fields.get("scope", "DPA の有効性と ISO/IEC 27001 認証書"),
        result=fields.get("result", CONFIRMED),
        note=fields.get("note", ""),
    )


# --- recording a check -----------------------------------------------------------------------


def test_a_check_is_recorded_audited_and_moves_the_next_check_on(twilio_row, supervisor):
    today = timezone.localdate()
    made = check(twilio_row, supervisor, today, note="問題なし")
    assert made.checked_by == supervisor and made.note == "問題なし"
    twilio_row.refresh_from_db()
    assert twilio_row.last_checked_on == today
    assert twilio_row.next_check_on == twilio_row.due_after(today)
    assert (twilio_row.next_check_on - today).days in range(365, 367)  # 12 months on
    event = AccessEvent.objects.get(action=AccessEvent.Action.CROSS_BORDER_CHECK)
    assert event.actor == supervisor
    assert event.detail["recipient"] == "Twilio Inc."
    assert event.detail["checked_on"] == today.isoformat()
    assert event.detail["result"] == "confirmed"
    assert event.detail["next_check"] == twilio_row.next_check_on.isoformat()


def test_an_older_check_recorded_late_does_not_move_the_dates_back(twilio_row, supervisor):
    today = timezone.localdate()
    check(twilio_row, supervisor, today)
    check(twilio_row, supervisor, today - timedelta(days=40))
    twilio_row.refresh_from_db()
    assert twilio_row.last_checked_on == today
    assert twilio_row.checks.count() == 2


def test_the_interval_is_counted_in_calendar_months():
    row = CrossBorderRecipient(check_interval_months=1)
    assert row.due_after(date(2027, 1, 31)) == date(2027, 2, 28)
    row.check_interval_months = 12
    assert row.due_after(date(2028, 2, 29)) == date(2029, 2, 28)
    assert row.due_after(None) is None


def test_a_check_in_the_future_or_without_scope_is_refused(twilio_row, supervisor):
    with pytest.raises(ValidationError):
        check(twilio_row, supervisor, timezone.localdate() + timedelta(days=1))
    with pytest.raises(ValidationError):
        check(twilio_row, supervisor, timezone.localdate(), scope="  ")
    assert not CrossBorderCheck.objects.exists()
    assert not AccessEvent.objects.filter(action=AccessEvent.Action.CROSS_BORDER_CHECK).exists()


def test_an_operator_cannot_record_a_check(twilio_row, operator):
    with pytest.raises(NotAllowed):
        check(twilio_row, operator.user, timezone.localdate())
    assert not CrossBorderCheck.objects.exists()


def test_a_compliance_officer_records_a_check_in_the_admin(client, twilio_row, compliance_officer):
    client.force_login(compliance_officer)
    change_url = reverse("admin:privacy_crossborderrecipient_change", args=[twilio_row.pk])
    check_url = reverse("admin:privacy_crossborderrecipient_check", args=[twilio_row.pk])
    assert check_url in client.get(change_url).text
    page = client.get(check_url)
    assert page.status_code == 200
    assert "Twilio Data Protection Addendum" in page.text  # the evidence, to check against
    response = client.post(
        check_url,
        {
            "checked_on": timezone.localdate().isoformat(),
            "scope": "DPA と SOC 2 報告書",
            "result": "confirmed",
            "note": "",
        },
    )
    assert response.status_code == 302
    made = CrossBorderCheck.objects.get()
    assert made.checked_by == compliance_officer and made.scope == "DPA と SOC 2 報告書"
    assert AccessEvent.objects.filter(
        action=AccessEvent.Action.CROSS_BORDER_CHECK, actor=compliance_officer
    ).exists()
    page = client.get(change_url).text
    assert "DPA と SOC 2 報告書" in page  # the history, on the recipient's page


def test_the_admin_form_refuses_an_incomplete_check(client, twilio_row, supervisor):
    client.force_login(supervisor)
    check_url = reverse("admin:privacy_crossborderrecipient_check", args=[twilio_row.pk])
    response = client.post(check_url, {"checked_on": "", "scope": "", "result": "confirmed"})
    assert response.status_code == 400
    assert not CrossBorderCheck.objects.exists()


def test_an_operator_cannot_open_the_register(client, twilio_row, operator):
    client.force_login(operator.user)
    assert client.get(reverse("admin:privacy_crossborderrecipient_changelist")).status_code == 403
    check_url = reverse("admin:privacy_crossborderrecipient_check", args=[twilio_row.pk])
    assert client.post(check_url, {"scope": "x"}).status_code == 403


def test_checks_cannot_be_changed_or_deleted_in_the_admin(client, twilio_row, supervisor):
    made = check(twilio_row, supervisor, timezone.localdate())
    client.force_login(supervisor)
    url = reverse("admin:privacy_crossbordercheck_delete", args=[made.pk])
    assert client.post(url, {"post": "yes"}).status_code == 403
    assert CrossBorderCheck.objects.filter(pk=made.pk).exists()


def test_deleting_a_recipient_asks_first_and_a_checked_one_is_kept(client, twilio_row, supervisor):
    client.force_login(supervisor)
    url = reverse("admin:privacy_crossborderrecipient_delete", args=[twilio_row.pk])
    assert "Twilio Inc." in client.get(url).text  # Django's confirmation page
    check(twilio_row, supervisor, timezone.localdate())
    client.post(url, {"post": "yes"})
    assert CrossBorderRecipient.objects.filter(pk=twilio_row.pk).exists()


def test_the_admin_list_marks_overdue_and_due_checks(client, twilio_row, supervisor):
    today = timezone.localdate()
    soon = CrossBorderRecipient.objects.create(
        recipient="Example Cloud Ltd.",
        country_ja="シンガポール",
        services_ja="保管",
        measures_ja="契約",
        check_interval_months=1,
    )
    check(soon, supervisor, today - timedelta(days=20))
    client.force_login(supervisor)
    page = client.get(reverse("admin:privacy_crossborderrecipient_changelist")).text
    assert "未確認" in page  # Twilio's row was never checked
    assert "30日以内に期限" in page

    check(twilio_row, supervisor, today - timedelta(days=400))
    page = client.get(reverse("admin:privacy_crossborderrecipient_changelist")).text
    assert "期限超過" in page


# --- reminders --------------------------------------------------------------------------------


def test_staff_are_reminded_once_when_a_check_falls_due_within_30_days(twilio_row, staff, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    today = timezone.localdate()
    check(twilio_row, staff, today - timedelta(days=345))  # next check in about 20 days
    twilio_row.refresh_from_db()

    assert crossborder.remind_due_checks(today=today) == 1
    assert len(mail.outbox) == 1
    sent = mail.outbox[0]
    assert sorted(sent.to) == ["compliance@example.jp", "supervisor@example.jp"]
    assert "Twilio Inc." in sent.subject and twilio_row.next_check_on.isoformat() in sent.subject
    assert "個人情報保護法第28条" in sent.body
    assert reverse("admin:privacy_crossborderrecipient_check", args=[twilio_row.pk]) in sent.body

    # Once: the next runs, also the next days, send nothing for the same due date.
    assert crossborder.remind_due_checks(today=today) == 0
    assert remind_cross_border_checks() == 0
    assert crossborder.remind_due_checks(today=today + timedelta(days=25)) == 0
    assert len(mail.outbox) == 1


def test_a_check_far_from_due_sends_nothing(twilio_row, staff, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    check(twilio_row, staff, timezone.localdate())
    assert crossborder.remind_due_checks() == 0
    assert mail.outbox == []


def test_an_overdue_check_is_reminded_and_a_new_check_starts_a_new_reminder(
    twilio_row, staff, settings
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    today = timezone.localdate()
    check(twilio_row, staff, today - timedelta(days=400))
    assert crossborder.remind_due_checks(today=today) == 1
    assert mail.outbox[0].subject.startswith("【期限超過】")

    # The check is made; a year later it falls due again and staff are reminded again.
    check(twilio_row, staff, today)
    twilio_row.refresh_from_db()
    later = twilio_row.next_check_on - timedelta(days=10)
    assert crossborder.remind_due_checks(today=later) == 1
    assert len(mail.outbox) == 2
    assert f"【{twilio_row.next_check_on.isoformat()}期限】" in mail.outbox[1].subject


def test_a_recipient_never_checked_is_reminded_as_overdue(twilio_row, staff, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert remind_cross_border_checks() == 1
    assert mail.outbox[0].subject.startswith("【期限超過】")
    assert "前回の確認：未実施" in mail.outbox[0].body


def test_the_reminder_task_is_on_the_beat_schedule(settings):
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "privacy.tasks.remind_cross_border_checks" in tasks


def test_a_failed_email_is_tried_again_on_the_next_run(twilio_row, staff, settings, monkeypatch):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

    def unreachable(*args, **kwargs):
        raise ConnectionRefusedError("no mail server")

    monkeypatch.setattr("django.core.mail.backends.locmem.EmailBackend.send_messages", unreachable)
    assert crossborder.remind_due_checks() == 0
    monkeypatch.undo()
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert crossborder.remind_due_checks() == 1
    assert len(mail.outbox) == 1


# --- the public summary (the page and the answer to art. 28(3)) --------------------------------


def test_the_public_summary_states_each_recipient(twilio_row, supervisor):
    assert crossborder.public_summary() == [
        {
            "recipient": "Twilio Inc.",
            "country": "米国",
            "services": "音声通話・録音・SMS",
            "basis": "相当措置（契約・認証）",
            "measures": "データ処理契約（DPA）を締結しています。",
            "country_regime": "",
            "last_checked": None,
            "next_check": None,
        }
    ]
    today = timezone.localdate()
    check(twilio_row, supervisor, today)
    twilio_row.refresh_from_db()
    summary = crossborder.public_summary()[0]
    assert summary["last_checked"] == today
    assert summary["next_check"] == twilio_row.next_check_on


def test_the_public_page_shows_the_last_check(client, twilio_row, supervisor, quality):
    published_notice(purposes=[quality])
    check(twilio_row, supervisor, timezone.localdate())
    page = client.get(reverse("privacy:notice-current")).text
    start = page.index('id="cross-border"')
    section = page[start : page.index("<h2", start)]
    assert f'datetime="{timezone.localdate().isoformat()}"' in section
