"""The breach (漏えい等) workflow: the report clocks of each rule 7 category, scoping from the
system, the strong-encryption test per recording, reminders, notification of the persons
through the Twilio emulator, the public notice, the audit trail, the dashboard and bad input."""

from datetime import datetime, timedelta

import pytest
from django.core import mail
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.core.mail.backends.base import BaseEmailBackend
from django.utils import timezone, translation

from audit import services as audit
from audit.models import AccessEvent
from contactcenter.models import Call, Customer
from contactcenter.phones import CallerIdStatus
from contactcenter.roles import COMPLIANCE, OPERATOR
from incidents import clocks, encryption, notify, reminders, scoping, services
from incidents.models import AffectedRecording, Incident, IncidentNotification, IncidentReminder
from incidents.report import compliance_section
from recordings.models import Recording, Tombstone

from .factories import UserFactory, stored_recording
from .helpers.staff import acknowledged_operator

pytestmark = pytest.mark.django_db

KNOWN = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.get_fixed_timezone(9 * 60))
AUDIO = b"RIFF" + b"\x00" * 5000


class UnreachableBackend(BaseEmailBackend):
    """An email backend whose mail server cannot be reached."""

    def send_messages(self, email_messages):
        raise ConnectionRefusedError("no mail server")


def new_incident(by, **fields):
    values = {
        "title": "監督者のノートPC紛失",
        "description": "A supervisor's laptop was lost on a train.",
        "became_known_at": KNOWN,
        "cause": Incident.Cause.LOSS_OR_THEFT,
        "scope_kind": Incident.ScopeKind.STORAGE,
        **fields,
    }
    return services.record_incident(incident=Incident(**values), by=by)


def scoped(incident, by):
    scoping.start_scoping(incident=incident, by=by)
    return scoping.run_scoping(incident.pk)


def encryption_tested(incident, by):
    return encryption.run_encryption_test(scoped(incident, by).pk, by=by)


@pytest.fixture
def officer(db):
    return UserFactory(username="officer", email="officer@example.jp", roles=[COMPLIANCE])


@pytest.fixture
def stored(operator):
    """Two stored recordings, one of another operator, and one not stored yet."""
    first = stored_recording(operator, audio=AUDIO)
    second = stored_recording(acknowledged_operator("op-two"), audio=AUDIO)
    waiting = Recording.objects.create(
        sid="RE" + "f" * 32, call=first.call, status=Recording.Status.COMPLETED
    )
    return first, second, waiting


# --- the clocks --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("category", "final_days"),
    [
        ({"category_sensitive": True}, 30),
        ({"category_financial": True}, 30),
        ({"category_unlawful": True}, 60),
        ({"category_many": True}, 30),
    ],
)
def test_the_clocks_of_each_category(officer, category, final_days):
    """速報 5 days after it became known; 確報 30 days, or 60 for a suspected unlawful act."""
    incident = new_incident(officer, **category)
    preliminary, final = clocks.clocks(incident, now=KNOWN + timedelta(days=1))
    assert preliminary.due == KNOWN + timedelta(days=5)
    assert final.due == KNOWN + timedelta(days=final_days)
    assert preliminary.days_left == 4 and not preliminary.overdue
    later = clocks.clocks(incident, now=KNOWN + timedelta(days=6))[0]
    assert later.overdue and later.days_overdue == 1


def test_the_preliminary_days_follow_the_setting(officer, settings):
    settings.INCIDENT_PRELIMINARY_DAYS = 3
    incident = new_incident(officer, category_financial=True)
    assert clocks.preliminary_due(incident) == KNOWN + timedelta(days=3)


def test_more_than_a_thousand_persons_sets_category_4(officer, operator):
    """Category (4) is set from the counted persons (here the threshold is reached in a
    smaller dataset by counting against a lowered bound)."""
    stored_recording(operator, audio=AUDIO)
    incident = scoped(new_incident(officer, became_known_at=timezone.now()), officer)
    assert incident.scoped_persons == 1 and not incident.category_many_counted
    original = scoping.MANY_PERSONS
    try:
        scoping.MANY_PERSONS = 0
        incident = scoped(incident, officer)
    finally:
        scoping.MANY_PERSONS = original
    assert incident.category_many_counted and incident.categories == [4]


# --- scoping -----------------------------------------------------------------------------


def test_storage_scope_counts_every_recording_with_a_stored_copy(officer, stored):
    first, second, _waiting = stored
    incident = scoped(new_incident(officer, became_known_at=timezone.now()), officer)
    assert set(incident.affected.values_list("recording_id", flat=True)) == {first.pk, second.pk}
    assert (incident.scoped_recordings, incident.scoped_calls, incident.scoped_persons) == (2, 2, 2)
    assert incident.scope_state == Incident.ScopeState.DONE


def test_period_scope_counts_the_recordings_of_calls_in_the_period(officer, stored):
    first, second, waiting = stored
    now = timezone.now()
    type(first.call).objects.filter(pk=second.call_id).update(started_at=now - timedelta(days=40))
    incident = scoped(
        new_incident(
            officer,
            became_known_at=now,
            scope_kind=Incident.ScopeKind.PERIOD,
            scope_from=now - timedelta(days=7),
            scope_to=now + timedelta(hours=1),
        ),
        officer,
    )
    # The first call's two recordings (one not stored yet); the second call was earlier.
    assert set(incident.affected.values_list("recording_id", flat=True)) == {first.pk, waiting.pk}
    assert (incident.scoped_recordings, incident.scoped_calls, incident.scoped_persons) == (2, 1, 1)


def test_account_scope_counts_what_the_account_accessed(officer, supervisor, stored):
    _first, second, _waiting = stored
    audit.record(AccessEvent.Action.PLAYBACK, actor=supervisor, recording=second)
    incident = scoped(
        new_incident(
            officer,
            became_known_at=timezone.now(),
            scope_kind=Incident.ScopeKind.ACCOUNT,
            scope_user=supervisor,
        ),
        officer,
    )
    assert list(incident.affected.values_list("recording_id", flat=True)) == [second.pk]


def test_account_scope_of_an_operator_counts_their_calls(officer, operator, stored):
    first, _second, waiting = stored
    incident = scoped(
        new_incident(
            officer,
            became_known_at=timezone.now(),
            scope_kind=Incident.ScopeKind.ACCOUNT,
            scope_operator=operator,
        ),
        officer,
    )
    assert set(incident.affected.values_list("recording_id", flat=True)) == {first.pk, waiting.pk}


def test_master_key_scope_counts_the_recordings_wrapped_with_it(officer, stored):
    first, _second, _waiting = stored
    Recording.objects.filter(pk=first.pk).update(key_id="old-1")
    incident = scoped(
        new_incident(
            officer,
            became_known_at=timezone.now(),
            scope_kind=Incident.ScopeKind.MASTER_KEY,
            affected_key_ids=["old-1"],
        ),
        officer,
    )
    assert list(incident.affected.values_list("recording_id", flat=True)) == [first.pk]


def test_scoping_in_small_batches_gives_the_same_answer_and_runs_once(officer, stored):
    incident = new_incident(officer, became_known_at=timezone.now())
    scoping.start_scoping(incident=incident, by=officer)
    incident = scoping.run_scoping(incident.pk, batch=1)
    assert incident.scoped_recordings == 2 and incident.scope_progress == 2
    assert scoping.run_scoping(incident.pk) is None  # done: a second run does nothing
    assert AffectedRecording.objects.filter(incident=incident).count() == 2


# --- the strong-encryption test ----------------------------------------------------------


def result_of(incident, recording):
    return AffectedRecording.objects.get(incident=incident, recording=recording)


def test_a_stored_recording_whose_key_is_not_in_scope_is_protected(officer, stored):
    first, _second, _waiting = stored
    incident = encryption_tested(new_incident(officer, became_known_at=timezone.now()), officer)
    row = result_of(incident, first)
    assert row.result == AffectedRecording.Result.PROTECTED
    assert row.evidence["key_id"] == first.key_id
    assert row.evidence["format"] == "CCREC v1"
    assert row.evidence["segment_size"] == 64 * 1024
    assert row.evidence["wrapped_key"] == "opens with its master key"
    assert incident.unprotected_recordings == 0 and incident.protected_recordings == 2


def test_a_recording_whose_master_key_is_in_scope_is_not_protected(officer, stored):
    first, _second, _waiting = stored
    incident = encryption_tested(
        new_incident(officer, became_known_at=timezone.now(), affected_key_ids=[first.key_id]),
        officer,
    )
    row = result_of(incident, first)
    assert row.result == AffectedRecording.Result.NOT_PROTECTED
    assert row.reason == "master_key_in_scope"
    assert (incident.unprotected_recordings, incident.unprotected_persons) == (2, 2)


def test_a_damaged_wrapped_key_is_not_protected(officer, stored):
    first, second, _waiting = stored
    damaged = bytearray(first.wrapped_key)
    damaged[-1] ^= 1
    Recording.objects.filter(pk=first.pk).update(wrapped_key=bytes(damaged))
    incident = encryption_tested(new_incident(officer, became_known_at=timezone.now()), officer)
    assert result_of(incident, first).reason == "damaged_wrapped_key"
    assert result_of(incident, second).result == AffectedRecording.Result.PROTECTED


def test_a_blob_not_in_our_format_is_not_protected(officer, stored):
    first, _second, _waiting = stored
    storage = storages["recordings"]
    storage.delete(first.blob_name)
    storage.save(first.blob_name, ContentFile(b"RIFF plain audio, not encrypted"))
    incident = encryption_tested(new_incident(officer, became_known_at=timezone.now()), officer)
    row = result_of(incident, first)
    assert (row.result, row.reason) == (AffectedRecording.Result.NOT_PROTECTED, "not_our_format")


def test_purged_and_unstored_recordings_hold_nothing_readable(officer, stored):
    first, _second, waiting = stored
    Recording.objects.filter(pk=first.pk).update(status=Recording.Status.PURGED, wrapped_key=None)
    Tombstone.objects.create(recording=first, reason=Tombstone.Reason.RETENTION)
    incident = new_incident(
        officer,
        became_known_at=timezone.now(),
        scope_kind=Incident.ScopeKind.ACCOUNT,
        scope_operator=first.call.operator,
    )
    incident = encryption_tested(incident, officer)
    assert result_of(incident, first).reason == "purged"
    assert result_of(incident, waiting).reason == "not_stored"
    assert incident.unprotected_recordings == 0


def test_the_evidence_names_when_the_key_became_the_wrapping_key(officer, stored):
    first, _second, _waiting = stored
    audit.record(
        AccessEvent.Action.KEY_ROTATION, actor_label="key rotation", detail={"key_id": "dev-1"}
    )
    incident = encryption_tested(new_incident(officer, became_known_at=timezone.now()), officer)
    evidence = result_of(incident, first).evidence
    assert evidence["key_wrapping_since"] and evidence["rotations"]
    assert evidence["key_replaced_at"] is None


# --- reportable or not -------------------------------------------------------------------


def test_reportable_when_a_category_applies_and_a_recording_is_not_protected(officer, stored):
    first, _second, _waiting = stored
    incident = new_incident(
        officer,
        became_known_at=timezone.now(),
        category_unlawful=True,
        affected_key_ids=[first.key_id],
    )
    assert clocks.reportability(incident).reportable is None  # not tested yet: clocks run
    assert clocks.reportability(encryption_tested(incident, officer)).reportable is True


def test_not_reportable_when_every_recording_is_protected(officer, stored):
    incident = new_incident(officer, became_known_at=timezone.now(), category_unlawful=True)
    state = clocks.reportability(encryption_tested(incident, officer))
    assert state.reportable is False and not state.clocks_run
    with translation.override("en"):
        assert "was protected by strong encryption" in str(state.reason)


def test_not_reportable_without_a_category(officer, stored):
    first, _second, _waiting = stored
    incident = encryption_tested(
        new_incident(officer, became_known_at=timezone.now(), affected_key_ids=[first.key_id]),
        officer,
    )
    assert clocks.reportability(incident).reportable is False


def test_a_recording_that_may_contain_card_data_makes_the_leak_category_2(officer, stored):
    """One card number on a leaked recording is reportable whatever the count (rule 7 (2))."""
    first, _second, _waiting = stored
    Call.objects.filter(pk=first.call_id).update(card_data_suspected_at=timezone.now())
    incident = encryption_tested(
        new_incident(officer, became_known_at=timezone.now(), affected_key_ids=[first.key_id]),
        officer,
    )
    assert incident.scoped_card_data_recordings == 1  # the stored one (storage scope)
    assert incident.category_financial_counted is True
    assert incident.categories == [2]
    assert clocks.reportability(incident).reportable is True
    unmarked = encryption_tested(
        new_incident(officer, became_known_at=timezone.now(), affected_key_ids=[first.key_id]),
        officer,
    )
    assert unmarked.categories == [2]  # the mark stays on the call
    Call.objects.filter(pk=first.call_id).update(card_data_suspected_at=None)
    clean = scoped(new_incident(officer, became_known_at=timezone.now()), officer)
    assert (clean.scoped_card_data_recordings, clean.categories) == (0, [])


def test_the_workflow_steps_are_for_compliance_officers_and_in_order(
    officer, supervisor, stored, tasks_in_process
):
    from django.core.exceptions import ValidationError

    from contactcenter.roles import NotAllowed

    incident = new_incident(officer, became_known_at=timezone.now(), category_unlawful=True)
    for step in (services.scope, services.test_encryption, services.send_notifications):
        with pytest.raises(NotAllowed):
            step(incident=incident, by=supervisor)
    with (
        translation.override("en"),
        pytest.raises(ValidationError, match="Scope the incident first"),
    ):
        services.test_encryption(incident=incident, by=officer)
    with (
        translation.override("en"),
        pytest.raises(ValidationError, match="run the encryption test first"),
    ):
        services.send_notifications(incident=incident, by=officer)
    incident, done = services.scope(incident=incident, by=officer)
    assert done and incident.scoped_recordings == 2
    incident, done = services.test_encryption(incident=incident, by=officer)
    assert done and incident.protected_recordings == 2
    assert not AffectedRecording.objects.filter(incident=incident, result="untested").exists()


# --- reminders ---------------------------------------------------------------------------


def test_a_reminder_is_emailed_once_two_days_before(officer, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    now = timezone.now()
    new_incident(officer, became_known_at=now - timedelta(days=3), category_financial=True)
    assert reminders.remind_deadlines(now=now) == 1
    assert reminders.remind_deadlines(now=now) == 0
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["officer@example.jp"]
    assert "速報" in mail.outbox[0].subject


def test_an_overdue_report_is_reminded_once(officer, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    now = timezone.now()
    new_incident(officer, became_known_at=now - timedelta(days=8), category_financial=True)
    assert reminders.remind_deadlines(now=now) == 1
    assert reminders.remind_deadlines(now=now + timedelta(hours=1)) == 0
    assert "期限超過" in mail.outbox[0].subject or "Overdue" in mail.outbox[0].subject


def test_a_reminder_that_could_not_be_sent_is_tried_again(officer, settings):
    now = timezone.now()
    new_incident(officer, became_known_at=now - timedelta(days=3), category_financial=True)
    settings.EMAIL_BACKEND = "tests.test_incidents.UnreachableBackend"
    assert reminders.remind_deadlines(now=now) == 0
    assert not IncidentReminder.objects.exists()
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert reminders.remind_deadlines(now=now) == 1
    assert len(mail.outbox) == 1


def test_no_reminder_for_a_submitted_report_or_an_incident_without_category(officer, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    now = timezone.now()
    new_incident(officer, became_known_at=now - timedelta(days=3))
    done = new_incident(officer, became_known_at=now - timedelta(days=3), category_financial=True)
    services.mark_submitted(incident=done, report="preliminary", by=officer)
    assert reminders.remind_deadlines(now=now) == 0


# --- notifying the persons ---------------------------------------------------------------


@pytest.fixture
def four_persons(operator):
    """A mobile, a landline, a withheld number and a number Twilio refuses."""
    recordings = [stored_recording(operator, audio=AUDIO) for _ in range(4)]
    customers = [recording.call.customer for recording in recordings]
    Customer.objects.filter(pk=customers[0].pk).update(phone_number="+819011112222")
    Customer.objects.filter(pk=customers[1].pk).update(phone_number="+81312345678")
    Customer.objects.filter(pk=customers[2].pk).update(
        phone_number=None, caller_id_status=CallerIdStatus.WITHHELD
    )
    Customer.objects.filter(pk=customers[3].pk).update(phone_number="+81901")
    return customers


def test_notifications_reach_the_emulator_and_each_is_recorded(officer, four_persons, twilio):
    mobile, landline, withheld, refused = four_persons
    incident = new_incident(
        officer,
        became_known_at=timezone.now(),
        category_unlawful=True,
        affected_key_ids=["dev-1"],
    )
    incident = encryption_tested(incident, officer)
    assert notify.plan(incident) | {"done": None} == {
        "sms": 2,
        "voice": 1,
        "public": 1,
        "done": None,
    }
    counts = notify.send(incident.pk, by_id=officer.pk)
    assert counts == {"sent": 2, "failed": 1}
    assert [message["to"] for message in twilio.state.messages] == ["+819011112222"]
    assert incident.reference in twilio.state.messages[0]["body"]
    [call] = twilio.state.outbound_calls
    assert call["to"] == "+81312345678"
    assert '<Say language="ja-JP">' in call["twiml"]
    rows = {row.customer_id: row for row in IncidentNotification.objects.all()}
    assert rows[mobile.pk].status == "sent" and rows[mobile.pk].twilio_sid.startswith("SM")
    assert rows[landline.pk].channel == "voice" and rows[landline.pk].twilio_sid.startswith("CA")
    assert rows[withheld.pk].channel == "public" and rows[withheld.pk].status == "public"
    assert rows[refused.pk].status == "failed" and "21211" in rows[refused.pk].error
    # Sending again tells nobody twice.
    assert notify.send(incident.pk) == {"sent": 0, "failed": 0}
    assert len(twilio.state.messages) == 1 and len(twilio.state.outbound_calls) == 1


def test_protected_persons_are_not_told(officer, four_persons, twilio):
    incident = encryption_tested(new_incident(officer, became_known_at=timezone.now()), officer)
    assert notify.send(incident.pk) == {"sent": 0, "failed": 0}
    assert twilio.state.messages == [] and not IncidentNotification.objects.exists()


def test_the_admin_confirms_before_sending(
    client, officer, four_persons, twilio, tasks_in_process, django_capture_on_commit_callbacks
):
    incident = encryption_tested(
        new_incident(officer, became_known_at=timezone.now(), affected_key_ids=["dev-1"]),
        officer,
    )
    client.force_login(officer)
    url = f"/admin/incidents/incident/{incident.pk}/notify/"
    page = client.get(url)
    assert page.status_code == 200
    assert twilio.state.messages == []
    assert 'id="plan-sms"' in page.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(url).status_code == 302
    assert len(twilio.state.messages) == 1
    assert IncidentNotification.objects.filter(status="sent").count() == 2


# --- the public notice -------------------------------------------------------------------


def test_the_public_notice_is_public_once_published(client, officer):
    incident = new_incident(
        officer,
        public_notice_text="当社が管理する通話録音の一部が漏えいしたおそれがあります。",
        public_notice_text_en="Some call recordings we hold may have leaked.",
    )
    url = f"/incidents/{incident.reference}/notice/"
    assert client.get(url).status_code == 404
    services.publish_notice(incident=incident, by=officer)
    page = client.get(url)
    assert page.status_code == 200
    body = page.content.decode()
    assert "通話録音の一部が漏えいしたおそれ" in body and incident.reference in body
    client.cookies["django_language"] = "en"
    assert "Some call recordings we hold may have leaked." in client.get(url).content.decode()


def test_an_unknown_notice_is_404(client):
    assert client.get("/incidents/INC-2026-9999/notice/").status_code == 404


def test_a_notice_cannot_be_published_empty(client, officer):
    incident = new_incident(officer)
    client.force_login(officer)
    response = client.post(f"/admin/incidents/incident/{incident.pk}/publish/")
    assert response.status_code == 400
    incident.refresh_from_db()
    assert incident.public_notice_published_at is None


# --- drafts and submission ---------------------------------------------------------------


def test_the_drafts_hold_the_nine_items_of_rule_8(client, officer, stored):
    incident = encryption_tested(
        new_incident(
            officer,
            became_known_at=timezone.now(),
            category_unlawful=True,
            affected_key_ids=["dev-1"],
            recurrence_measures="ノートPCのディスク暗号化を必須にする",
        ),
        officer,
    )
    client.force_login(officer)
    page = client.get(f"/admin/incidents/incident/{incident.pk}/draft/final/")
    assert page.status_code == 200
    text = client.get(f"/admin/incidents/incident/{incident.pk}/draft/final.txt")
    body = text.content.decode()
    assert text["Content-Disposition"].startswith("attachment")
    for number in range(1, 10):
        assert f"({number}) " in body
    assert "ノートPCのディスク暗号化を必須にする" in body
    assert "2人" in body or "2 persons" in body


def test_marking_a_report_submitted_records_when_and_who(client, officer):
    incident = new_incident(officer, became_known_at=timezone.now() - timedelta(days=1))
    client.force_login(officer)
    url = f"/admin/incidents/incident/{incident.pk}/submit/preliminary/"
    assert client.get(url).status_code == 200
    at = timezone.localtime().strftime("%Y-%m-%d %H:%M")
    assert client.post(url, {"submitted_at": at}).status_code == 302
    incident.refresh_from_db()
    assert incident.preliminary_submitted_by == officer
    assert client.post(url, {"submitted_at": at}).status_code == 400  # once


# --- the audit trail ---------------------------------------------------------------------


def test_each_step_is_audited(officer, four_persons, twilio):
    incident = new_incident(officer, became_known_at=timezone.now(), affected_key_ids=["dev-1"])
    incident.secondary_damage = "なし"
    services.change_incident(incident=incident, by=officer, changed_fields=["secondary_damage"])
    incident = encryption_tested(incident, officer)
    notify.send(incident.pk, by_id=officer.pk)
    services.mark_submitted(incident=incident, report="preliminary", by=officer)
    actions = set(AccessEvent.objects.values_list("action", flat=True))
    assert {
        AccessEvent.Action.INCIDENT_RECORDED,
        AccessEvent.Action.INCIDENT_CHANGED,
        AccessEvent.Action.INCIDENT_SCOPED,
        AccessEvent.Action.INCIDENT_ENCRYPTION_TEST,
        AccessEvent.Action.INCIDENT_NOTIFIED,
        AccessEvent.Action.INCIDENT_REPORTED,
    } <= actions


def test_only_compliance_officers_record_incidents(supervisor):
    from contactcenter.roles import NotAllowed

    with pytest.raises(NotAllowed):
        new_incident(supervisor)


# --- the admin pages, the dashboard and bad input ----------------------------------------


def test_the_dashboard_shows_an_incidents_deadline(client, officer, supervisor):
    incident = new_incident(
        officer, became_known_at=timezone.now() - timedelta(days=1), category_financial=True
    )
    client.force_login(supervisor)
    body = client.get("/admin/dashboard/").content.decode()
    assert f'id="incident-{incident.reference}"' in body
    due = timezone.localtime(clocks.preliminary_due(incident)).strftime("%Y-%m-%d %H:%M")
    assert due in body
    assert "4" in body


def test_the_dashboard_marks_an_overdue_report(client, officer):
    incident = new_incident(
        officer, became_known_at=timezone.now() - timedelta(days=9), category_financial=True
    )
    client.force_login(officer)
    body = client.get("/admin/dashboard/").content.decode()
    row = body[body.index(f'id="incident-{incident.reference}"') :]
    assert 'class="overdue"' in row[: row.index("</tr>")]


def test_the_incident_page_shows_its_clocks_and_scope(client, officer, stored):
    incident = scoped(
        new_incident(officer, became_known_at=timezone.now(), category_financial=True), officer
    )
    client.force_login(officer)
    body = client.get(f"/admin/incidents/incident/{incident.pk}/change/").content.decode()
    assert 'id="clock-preliminary"' in body and 'id="clock-final"' in body
    assert '<dd id="scoped-recordings">2</dd>' in body
    listing = client.get(f"/admin/incidents/incident/{incident.pk}/affected/")
    assert listing.status_code == 200


def test_a_supervisor_may_read_but_not_act(client, officer, supervisor, stored):
    incident = new_incident(officer, became_known_at=timezone.now())
    client.force_login(supervisor)
    assert client.get(f"/admin/incidents/incident/{incident.pk}/change/").status_code == 200
    assert client.post(f"/admin/incidents/incident/{incident.pk}/scope/").status_code == 403
    incident.refresh_from_db()
    assert incident.scope_state == Incident.ScopeState.NOT_SCOPED
    operator_user = UserFactory(username="op-x", roles=[OPERATOR])
    client.force_login(operator_user)
    assert client.get(f"/admin/incidents/incident/{incident.pk}/draft/final/").status_code == 403


def test_scope_and_test_buttons(client, officer, stored):
    incident = new_incident(officer, became_known_at=timezone.now(), affected_key_ids=["dev-1"])
    client.force_login(officer)
    assert client.post(f"/admin/incidents/incident/{incident.pk}/scope/").status_code == 302
    assert client.post(f"/admin/incidents/incident/{incident.pk}/test/").status_code == 302
    incident.refresh_from_db()
    assert (incident.scoped_recordings, incident.unprotected_recordings) == (2, 2)


def test_bad_dates_are_400_and_change_nothing(client, officer):
    client.force_login(officer)
    form = {
        "title": "x",
        "description": "x",
        "became_known_at": "2026-13-45T25:00",
        "cause": "other",
        "scope_kind": "storage",
        "status": "open",
        "data_items": "x",
        "affected_key_ids": "[]",
    }
    response = client.post("/admin/incidents/incident/add/", form)
    assert response.status_code == 400
    form |= {
        "became_known_at": "2026-03-02T09:00",
        "occurred_from": "2026-03-01T10:00",
        "occurred_to": "2026-02-01T10:00",
    }
    assert client.post("/admin/incidents/incident/add/", form).status_code == 400
    assert not Incident.objects.exists()


def test_recording_an_incident_from_the_admin_gives_it_a_reference(client, officer):
    client.force_login(officer)
    form = {
        "title": "紛失",
        "description": "x",
        "became_known_at": "2026-03-02T09:00",
        "cause": "loss_or_theft",
        "scope_kind": "storage",
        "status": "open",
        "data_items": "x",
        "affected_key_ids": "[]",
    }
    assert client.post("/admin/incidents/incident/add/", form).status_code == 302
    assert Incident.objects.get().reference == "INC-2026-0001"
    new_incident(officer)
    assert Incident.objects.order_by("pk").last().reference == "INC-2026-0002"


def test_unknown_incidents_and_bad_keys(client, officer):
    incident = new_incident(officer)
    client.force_login(officer)
    assert client.get("/admin/incidents/incident/999999/affected/").status_code == 404
    assert client.get("/admin/incidents/incident/999999/draft/final/").status_code == 404
    assert client.get(f"/admin/incidents/incident/{incident.pk}/draft/other/").status_code == 404
    affected = f"/admin/incidents/incident/{incident.pk}/affected/"
    assert client.get(affected + "?after=abc").status_code == 400
    assert client.get(affected + "?result=nope").status_code == 400
    submit = f"/admin/incidents/incident/{incident.pk}/submit/final/"
    assert client.post(submit, {"submitted_at": "yesterday"}).status_code == 400
    assert client.post(submit, {"submitted_at": "2020-01-01 10:00"}).status_code == 400
    incident.refresh_from_db()
    assert incident.final_submitted_at is None


# --- the compliance report section -------------------------------------------------------


def test_the_compliance_section_counts_the_period(officer):
    late = new_incident(officer, category_financial=True)
    services.mark_submitted(
        incident=late, report="preliminary", by=officer, at=KNOWN + timedelta(days=6)
    )
    section = compliance_section(start=KNOWN - timedelta(days=1), end=KNOWN + timedelta(days=10))
    assert section["rule"] == "R12"
    figures = {figure["label"]: figure for figure in section["figures"]}
    assert len(figures) == 4
    values = [figure["value"] for figure in section["figures"]]
    assert values[:3] == ["1", "0", "1"]
    assert section["figures"][2]["ok"] is False
    assert section["exceptions"] and late.reference in section["exceptions"][0]["text"]


def test_the_dashboard_panel_runs_one_query_however_many_incidents(client, officer):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(officer)
    new_incident(officer, became_known_at=timezone.now(), category_financial=True)
    client.get("/admin/dashboard/")
    with CaptureQueriesContext(connection) as one:
        client.get("/admin/dashboard/")
    for _ in range(5):
        new_incident(officer, became_known_at=timezone.now(), category_financial=True)
    with CaptureQueriesContext(connection) as six:
        body = client.get("/admin/dashboard/").content.decode()
    assert len(six) == len(one)
    assert body.count('id="incident-INC-') == 6


def test_the_notifications_list_opens_at_one_incident(client, officer):
    incident = new_incident(officer)
    client.force_login(officer)
    url = f"/admin/incidents/incidentnotification/?incident__id__exact={incident.pk}"
    assert client.get(url).status_code == 200


def test_the_demo_incident_is_scoped_and_tested(officer, supervisor, stored):
    from incidents.demo import create_demo_incident

    first, _second, _waiting = stored
    audit.record(AccessEvent.Action.PLAYBACK, actor=supervisor, recording=first)
    incident = create_demo_incident(officer=officer, supervisor=supervisor)
    assert incident.scoped_recordings == 1 and incident.tested_at is not None
    # The master key was on the laptop too: reportable, with deadlines on the dashboard.
    assert clocks.reportability(incident).reportable is True
    assert incident.unprotected_persons == 1
    assert create_demo_incident(officer=officer, supervisor=supervisor).pk == incident.pk


def test_a_large_scope_is_scoped_and_tested_by_the_worker(
    client, officer, stored, settings, tasks_in_process, django_capture_on_commit_callbacks
):
    """Above INCIDENT_SCOPE_INLINE_LIMIT the request only queues the work (the outbox)."""
    settings.INCIDENT_SCOPE_INLINE_LIMIT = 1
    incident = new_incident(officer, became_known_at=timezone.now(), affected_key_ids=["dev-1"])
    client.force_login(officer)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/admin/incidents/incident/{incident.pk}/scope/")
    incident.refresh_from_db()
    assert incident.scope_state == Incident.ScopeState.DONE and incident.scoped_recordings == 2
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/admin/incidents/incident/{incident.pk}/test/")
    incident.refresh_from_db()
    assert incident.unprotected_recordings == 2


def test_the_affected_list_pages_by_key(client, officer, stored):
    assert len(stored) == 3
    incident = scoped(new_incident(officer, became_known_at=timezone.now()), officer)
    rows = list(incident.affected.order_by("pk"))
    client.force_login(officer)
    url = f"/admin/incidents/incident/{incident.pk}/affected/"
    body = client.get(f"{url}?after={rows[0].pk}").content.decode()
    assert rows[1].recording.sid in body and rows[0].recording.sid not in body


def test_a_superuser_opens_the_incident_pages(client, officer):
    incident = new_incident(officer)
    IncidentNotification.objects.create(
        incident=incident,
        customer=Customer.objects.create(phone_number="+819000000001"),
        phone_number="+819000000001",
        channel="sms",
    )
    client.force_login(UserFactory(username="root", is_superuser=True))
    for url in (
        "/admin/incidents/incident/",
        f"/admin/incidents/incident/{incident.pk}/change/",
        "/admin/incidents/incidentnotification/",
        f"/admin/incidents/incidentnotification/{IncidentNotification.objects.get().pk}/change/",
    ):
        assert client.get(url).status_code == 200, url


def test_a_scope_without_recordings_is_not_reportable_here(officer):
    incident = encryption_tested(
        new_incident(officer, became_known_at=timezone.now(), category_financial=True), officer
    )
    assert incident.scoped_recordings == 0
    assert clocks.reportability(incident).reportable is False
