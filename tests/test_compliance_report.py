"""The compliance report: for a period, a section per rule (R1–R12) and the audit trail, with
figures an auditor can check against a dataset whose answers are known; the recording made
without consent is flagged; the PDF (WeasyPrint, Noto CJK) reads back with every section; the
page is for compliance officers and supervisors only, refuses bad periods with a 400, writes
its audit event and costs the same number of queries whatever the volume."""

import io
import subprocess
from datetime import timedelta

import pypdf
import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit import anchors
from audit import services as audit
from audit.models import AccessEvent
from backoffice import compliance, report_pdf
from consent.models import ConsentRecord
from consent.services import acknowledge_recording, record_consent, withdraw_consent
from contactcenter.models import Call
from contactcenter.roles import OPERATOR
from portal.models import CustomerRequest
from privacy import crossborder
from privacy.models import CrossBorderCheck, CrossBorderRecipient, Notice
from recordings import retention
from recordings.models import LegalHold, ProvisionRecord, ReconciliationRun, Recording

from .factories import CallFactory, OperatorFactory, UserFactory, recording_notice
from .helpers.services import require_service
from .test_audit import tamper

PAGE = "/admin/dashboard/compliance/"
Decision = ConsentRecord.Decision
Status = Recording.Status
ANNOUNCEMENT = "この通話は品質向上と研修のために録音し、Twilio が伝送・保管します。"
SECTION_TITLES_JA = [
    "R1",
    "R2",
    "R3",
    "R4",
    "R5",
    "R6",
    "R7",
    "R8",
    "R9",
    "R10",
    "R11",
    "R12",
]


def require_fonts():
    found = subprocess.run(
        ["fc-list", ":lang=ja", "family"], capture_output=True, text=True, check=False
    ).stdout
    if "Noto Sans CJK" not in found:
        require_service("Noto CJK fonts", "apt-get install fonts-noto-cjk")


def ago(days, hours=0):
    return timezone.now() - timedelta(days=days, hours=hours)


def the_period():
    """The 20 days before today and today (Tokyo): the audit events written now are in it."""
    today = timezone.localdate()
    return report_pdf.Period(today - timedelta(days=20), today)


def answer(call, decision, at):
    record_consent(
        customer=call.customer,
        call=call,
        party_role=ConsentRecord.PartyRole.CALLER,
        decision=decision,
        method=ConsentRecord.Method.IVR_KEYPRESS,
        digits="1" if decision == Decision.GRANTED else "2",
        announcement_text=ANNOUNCEMENT,
        recorded_by_system="twilio-ivr",
        at=at,
    )


def a_call(operator, at, **fields):
    fields = {
        "started_at": at,
        "answered_at": at,
        "ended_at": at + timedelta(minutes=5),
        "recording_state": Call.RecordingState.STOPPED,
        **fields,
    }
    return CallFactory(operator=operator, **fields)


def a_recording(call, status, *, started=None, **fields):
    if status in (Status.STORED, Status.PURGED) or fields.get("wrapped_key"):
        fields = {
            "wrapped_key": b"wrapped",
            "blob_name": f"{call.sid}.enc",
            "key_id": "k1",
            "plaintext_sha256": "ab" * 32,
            **fields,
        }
    return Recording.objects.create(
        sid="RE" + call.sid[2:],
        call=call,
        status=status,
        started_at=started or call.started_at + timedelta(minutes=1),
        **fields,
    )


def calls_of_the_period(operator, offset=0):
    """Six calls: two consented and recorded, one refused, one recorded WITHOUT consent, one
    consented whose recording waits at Twilio (consent withdrawn later), one missed."""
    later = timezone.now() + timedelta(days=30)
    c1 = a_call(operator, ago(10, offset))
    answer(c1, Decision.GRANTED, c1.started_at)
    r1 = a_recording(
        c1, Status.STORED, retain_until=later, twilio_deleted_at=c1.ended_at + timedelta(minutes=30)
    )
    c2 = a_call(operator, ago(9, offset))
    answer(c2, Decision.GRANTED, c2.started_at)
    a_recording(
        c2, Status.STORED, retain_until=later, twilio_deleted_at=c2.ended_at + timedelta(days=2)
    )
    c3 = a_call(operator, ago(8, offset), recording_state=Call.RecordingState.NOT_RECORDED)
    answer(c3, Decision.REFUSED, c3.started_at)
    c4 = a_call(operator, ago(7, offset))  # nobody asked the caller: no consent at all
    without = a_recording(
        c4, Status.STORED, retain_until=later, twilio_deleted_at=c4.ended_at + timedelta(hours=3)
    )
    c5 = a_call(operator, ago(6, offset))
    answer(c5, Decision.GRANTED, c5.started_at)
    a_recording(c5, Status.COMPLETED)
    withdraw_consent(customer=c5.customer, at=ago(2, offset))
    CallFactory(
        operator=None,
        started_at=ago(5, offset),
        missed=True,
        recording_state=Call.RecordingState.NOT_RECORDED,
    )
    return r1, without


@pytest.fixture
def center(db, supervisor):
    """The dataset with known answers (see each section's test)."""
    period = the_period()
    notice = recording_notice()
    # Published before the period: publishing never back-dates, so the test moves it.
    Notice.objects.filter(pk=notice.pk).update(
        effective_from=period.start - timedelta(days=10),
        published_at=period.start - timedelta(days=10),
    )
    operator = OperatorFactory(user=UserFactory(username="op-report", roles=[OPERATOR]))
    acknowledge_recording(operator=operator, by=None, at=period.start - timedelta(days=30))
    r1, without = calls_of_the_period(operator)

    # Purges of recordings of older calls: one on time, one late because of a hold, one late
    # with no reason.
    old = period.start - timedelta(days=60)
    on_time = a_recording(
        a_call(operator, old), Status.STORED, retain_until=ago(0, 2), twilio_deleted_at=old
    )
    held = a_recording(
        a_call(operator, old + timedelta(hours=1)),
        Status.STORED,
        retain_until=ago(5),
        twilio_deleted_at=old,
    )
    late = a_recording(
        a_call(operator, old + timedelta(hours=2)),
        Status.STORED,
        retain_until=ago(3),
        twilio_deleted_at=old,
    )
    hold = retention.place_hold(held, reason="訴訟対応", by=supervisor)
    LegalHold.objects.filter(pk=hold.pk).update(placed_at=period.start - timedelta(days=1))
    assert retention.purge_due(recording_ids=[on_time.pk]) == 1
    assert retention.purge_due(recording_ids=[late.pk]) == 1
    assert retention.release_hold(hold, reason="和解", by=supervisor) == 1
    retention.place_hold(r1, reason="苦情対応", by=supervisor)

    # Uses of the audio.
    for _ in range(2):
        audit.record(AccessEvent.Action.PLAYBACK, actor=supervisor, recording=r1, purpose="quality")
    audit.record(AccessEvent.Action.PLAYBACK, actor=operator.user, recording=r1, purpose="training")
    audit.record(
        AccessEvent.Action.PLAYBACK,
        actor_label=f"customer {r1.call.customer.phone_number}",
        recording=r1,
        purpose="disclosure",
    )
    audit.record(AccessEvent.Action.DOWNLOAD, actor=supervisor, recording=r1, purpose="evidence")
    for _ in range(2):
        audit.record(
            AccessEvent.Action.REFUSED,
            actor=operator.user,
            recording=r1,
            purpose="quality",
            detail={"reason": "no_open_purpose"},
        )
    audit.record(AccessEvent.Action.TRAINING_MARKED, actor=supervisor, recording=r1)
    audit.record(
        AccessEvent.Action.KEY_ROTATION,
        actor_label="key rotation",
        detail={"key_id": "k2", "rewrapped": 5},
    )

    # Customers' requests: on time, late, overdue, not yet due.
    requests = [
        ("hear", ago(10), ago(3), CustomerRequest.Status.DONE, ago(5)),
        ("copy", ago(9), ago(2), CustomerRequest.Status.DONE, ago(1)),
        ("delete", ago(8), ago(1), CustomerRequest.Status.RECEIVED, None),
        ("hear", ago(1), ago(-13), CustomerRequest.Status.RECEIVED, None),
    ]
    for index, (kind, received, due, status, closed) in enumerate(requests):
        CustomerRequest.objects.create(
            phone_number=f"+8190000000{index}",
            kind=kind,
            created_at=received,
            due_at=due,
            status=status,
            closed_at=closed,
        )

    ProvisionRecord.objects.create(
        provided_at=ago(4),
        recipient_name="損害保険株式会社",
        recipient_kind=ProvisionRecord.RecipientKind.INSURER,
        recipient_address="東京都",
        customer=r1.call.customer,
        call=r1.call,
        recording=r1,
        items=["audio"],
        basis=ProvisionRecord.Basis.CONSENT,
        consent_method=ProvisionRecord.ConsentMethod.WRITTEN,
        provided_by=supervisor,
        retain_until=timezone.now() + timedelta(days=365 * 3),
    )
    crossborder.record_check(
        recipient=CrossBorderRecipient.objects.get(),
        by=supervisor,
        checked_on=timezone.localdate() - timedelta(days=3),
        scope="DPA と ISO/IEC 27001 認証",
        result=CrossBorderCheck.Result.CONFIRMED,
    )
    ReconciliationRun.objects.create(
        since=ago(3), started_at=ago(2), status=ReconciliationRun.Status.SUCCEEDED, created=1
    )
    anchors.anchor()
    return {"period": period, "without": without, "notice": notice}


def build(period, language="ja"):
    return {
        section["rule"]: section
        for section in compliance.build(start=period.start, end=period.end, language=language)
    }


def values(section):
    return {row["label"]: (row["value"], row["ok"]) for row in section["figures"]}


def test_the_sections_come_in_rule_order(center):
    rules = [
        section["rule"]
        for section in compliance.build(
            start=center["period"].start, end=center["period"].end, language="ja"
        )
    ]
    assert rules == [*SECTION_TITLES_JA, "AUDIT"]


def test_r1_names_the_notice_in_force_with_a_link_to_its_version(center):
    section = build(center["period"], "en")["R1"]
    figures = values(section)
    assert figures["A published notice was in force when the period began"] == ("yes", True)
    assert figures["Notice versions in force during the period"] == ("1", None)
    assert figures["Consent answers given under version 1"] == ("4", None)
    version = center["notice"].version
    assert any(item["url"].endswith(f"/privacy/notices/{version}/") for item in section["evidence"])
    assert all(item["url"].startswith("http://") for item in section["evidence"])


def test_r2_counts_the_announcements_kept(center):
    figures = values(build(center["period"], "en")["R2"])
    assert figures["Keypress answers after the announcement"] == ("4", None)
    assert figures["Of which with the announcement's text and SHA-256 kept"] == ("4", True)


def test_r3_counts_calls_and_consent_and_flags_the_recording_made_without_consent(center):
    section = build(center["period"], "en")["R3"]
    figures = values(section)
    assert figures["Calls"] == ("6", None)
    assert figures["Answered"] == ("5", None)
    assert figures["Consent granted"] == ("3", None)
    assert figures["Consent refused"] == ("1", None)
    assert figures["Consent withdrawn"] == ("1", None)
    assert figures["Consent rate"] == ("75%", None)
    assert figures["Recordings of the period's calls"] == ("4", None)
    assert figures["Recordings made without a granted consent"] == ("1", False)
    assert figures[
        "Calls whose recording was started with no grant for the call in the ledger"
    ] == ("1", False)
    assert figures["Recordings Twilio reported for calls we did not ask to record"] == ("0", True)
    assert figures["Reconciliation runs against Twilio's lists (failed)"] == ("1 (0)", True)
    without = center["without"]
    [exception] = section["exceptions"]
    assert without.sid in exception["text"] and without.call.sid in exception["text"]
    assert "has not consented" in exception["text"]
    assert exception["url"].endswith(f"/admin/recordings/recording/{without.pk}/change/")
    assert section["chart"].startswith("<svg")


def test_a_consent_withdrawn_after_the_recording_is_no_exception_but_one_given_after_is(
    center, supervisor
):
    """Consent is judged as it stood when the recording started."""
    operator = Call.objects.filter(operator__isnull=False).first().operator
    call = a_call(operator, ago(4))
    a_recording(call, Status.STORED, started=call.started_at)
    answer(call, Decision.GRANTED, call.started_at + timedelta(minutes=2))  # too late
    figures = values(build(center["period"], "en")["R3"])
    assert figures["Recordings made without a granted consent"] == ("2", False)


def test_r5_r6_count_rotations_and_uses_per_purpose_and_role(center):
    report = build(center["period"], "en")
    protection = values(report["R5"])
    assert protection["Master key rotations"] == ("1", None)
    assert protection["Recordings of the period stored encrypted"] == ("3", None)
    use = values(report["R6"])
    assert use["Playback for “quality” by Supervisor"] == ("2", None)
    assert use["Playback for “training” by Operator"] == ("1", None)
    assert use["Playback for “disclosure” by the caller (disclosure)"] == ("1", None)
    assert use["Download for “evidence” by Supervisor"] == ("1", None)
    assert use["Accesses without a stated purpose"] == ("0", True)
    assert use["Accesses refused"] == ("2", None)
    assert use["Refused: no_open_purpose"] == ("2", None)


def test_r7_tells_purges_on_time_from_late_and_why_and_the_lag_at_twilio(center):
    section = build(center["period"], "en")["R7"]
    figures = values(section)
    assert figures["Recordings purged"] == ("3", None)
    assert figures["Purged at the end of retention on time (within a day)"] == ("1", None)
    assert figures["Purged late because of a legal hold"] == ("1", None)
    assert figures["Purged late without a hold"] == ("1", False)
    assert figures["Legal holds placed"] == ("1", None)
    assert figures["Legal holds released"] == ("1", None)
    assert figures["Legal holds in force at the end of the period"] == ("1", None)
    assert figures["Twilio's copy deleted"] == ("3", None)
    assert figures["Deleted at Twilio within an hour after the call"] == ("1", None)
    assert figures["Deleted at Twilio 1 to 24 hours after the call"] == ("1", None)
    assert figures["Deleted at Twilio 1 to 7 days after the call"] == ("1", None)
    assert figures["Deleted at Twilio later after the call"] == ("0", None)
    assert figures["Twilio's copy not deleted yet"] == ("1", False)
    assert len(section["exceptions"]) == 1
    assert section["chart"].startswith("<svg")


def test_r8_r9_count_requests_on_time_late_and_overdue(center):
    report = build(center["period"], "en")
    hearing = values(report["R8"])
    assert hearing["Requests to hear received"] == ("2", None)
    assert hearing["Answered within the deadline"] == ("1", None)
    assert hearing["Hearings by callers"] == ("1", None)
    rights = values(report["R9"])
    assert rights["Requests received"] == ("4", None)
    assert rights["Answered within the deadline"] == ("1", None)
    assert rights["Answered after the deadline"] == ("1", False)
    assert rights["Open and overdue"] == ("1", False)
    assert rights["Open, not yet due"] == ("1", None)
    assert rights["Withdrawals of consent (every call)"] == ("1", None)
    assert len(report["R9"]["exceptions"]) == 2


def test_r10_r11_and_the_audit_trail(center):
    report = build(center["period"], "en")
    assert values(report["R10"])["Training material markings"] == ("1", None)
    assert values(report["R10"])["Evidence packages downloaded"] == ("1", None)
    public = values(report["R11"])
    assert public["Provisions to third parties recorded"] == ("1", None)
    assert public["Recipient: Insurer"] == ("1", None)
    assert public["Cross-border checks made"] == ("1", None)
    trail = values(report["AUDIT"])
    assert trail["A signed checkpoint covers the end of the period"] == ("yes", True)
    assert trail["Checkpoints that disagree with the chain or do not verify"] == ("0", True)
    [verified] = [
        row for row in report["AUDIT"]["figures"] if "verified link by link" in row["label"]
    ]
    assert verified["ok"] is True
    assert report["R12"]["rule"] == "R12"


def audit_check(report):
    [row] = [row for row in report["AUDIT"]["figures"] if "verified link by link" in row["label"]]
    return row


def test_an_edited_event_shows_as_a_broken_chain(center):
    event = AccessEvent.objects.filter(action=AccessEvent.Action.PLAYBACK).first()
    table = AccessEvent._meta.db_table
    tamper((f"UPDATE {table} SET purpose = %s WHERE id = %s", ["marketing", event.pk]))  # noqa: S608
    verified = audit_check(build(center["period"], "en"))
    assert verified["ok"] is False
    assert f"event {event.seq}" in verified["note"]


def test_the_command_writes_a_pdf_with_every_section(center, tmp_path):
    require_fonts()
    output = tmp_path / "report.pdf"
    period = center["period"]
    call_command(
        "compliance_report",
        "--from",
        period.first_day.isoformat(),
        "--to",
        period.last_day.isoformat(),
        "--output",
        str(output),
    )
    reader = pypdf.PdfReader(io.BytesIO(output.read_bytes()))
    text = "\n".join(page.extract_text() for page in reader.pages)
    sections = compliance.build(start=period.start, end=period.end, language="ja")
    for section in sections:  # R1 … R12 and the audit trail, each with its heading
        assert f"{section['rule']}  {section['title']}" in text or section["rule"] == "AUDIT"
        assert section["title"] in text, section["title"]
    assert "コンプライアンス報告書" in text
    assert "同意なしに行われた録音" in text
    assert center["without"].sid in text
    assert "監査証跡" in text
    event = AccessEvent.objects.filter(action=AccessEvent.Action.COMPLIANCE_REPORT).get()
    assert event.actor_label == "manage.py compliance_report"
    assert event.detail == {
        "from": period.first_day.isoformat(),
        "to": period.last_day.isoformat(),
        "format": "pdf",
        "language": "ja",
    }


def test_the_command_writes_html_in_english(center, tmp_path):
    output = tmp_path / "report.html"
    period = center["period"]
    call_command(
        "compliance_report",
        f"--from={period.first_day}",
        f"--to={period.last_day}",
        f"--output={output}",
        "--language=en",
    )
    html = output.read_text()
    assert "Recordings made without a granted consent" in html
    assert 'lang="en"' in html


@pytest.mark.parametrize(
    "arguments",
    [
        ["--from=2026-13-01", "--to=2026-12-31"],
        ["--from=2026-11-30", "--to=2026-11-01"],
        ["--from=2024-01-01", "--to=2026-01-01"],
        ["--from=2026-11-01", "--to=2026-11-30", "--language=fr"],
    ],
)
def test_the_command_refuses_bad_input_clearly(db, tmp_path, arguments):
    with pytest.raises(CommandError):
        call_command("compliance_report", *arguments, f"--output={tmp_path / 'r.pdf'}")
    with pytest.raises(CommandError, match=r"\.pdf or \.html"):
        call_command("compliance_report", "--from=2026-11-01", "--to=2026-11-30", "--output=r.docx")
    assert not AccessEvent.objects.filter(action=AccessEvent.Action.COMPLIANCE_REPORT).exists()


def test_the_page_is_for_compliance_officers_and_supervisors(
    client, center, compliance_officer, supervisor
):
    period = center["period"]
    query = {"from": period.first_day.isoformat(), "to": period.last_day.isoformat()}
    client.force_login(compliance_officer)
    assert f'href="{PAGE}"' in client.get("/admin/dashboard/").content.decode()
    response = client.get(PAGE, query)
    assert response.status_code == 200
    page = response.content.decode()
    assert "R1" in page and "R12" in page and "監査証跡" in page
    assert center["without"].sid in page
    event = AccessEvent.objects.filter(action=AccessEvent.Action.COMPLIANCE_REPORT).get()
    assert event.actor_label == "compliance"
    assert event.detail["format"] == "page"
    client.force_login(supervisor)
    english = client.get(PAGE, {**query, "language": "en"}).content.decode()
    assert "Recordings made without a granted consent" in english
    assert "同意なしに行われた録音" in page


def test_an_operator_is_refused_in_japanese(client, db):
    operator = UserFactory(username="op-refused", roles=[OPERATOR])
    client.force_login(operator)
    response = client.get(PAGE)
    assert response.status_code == 403
    assert "コンプライアンス担当" in response.content.decode()
    assert not AccessEvent.objects.filter(action=AccessEvent.Action.COMPLIANCE_REPORT).exists()


@pytest.mark.parametrize(
    "query",
    [
        {"from": "yesterday", "to": "2026-11-30"},
        {"from": "2026-11-30", "to": "2026-11-01"},
        {"from": "2025-01-01", "to": "2026-11-30"},
        {"from": "0001-01-01", "to": "0001-01-02"},
        {"from": "9999-12-30", "to": "9999-12-31"},
        {"from": "2026-02-30", "to": "2026-03-01"},
        {"from": "2026-11-01", "to": "2026-11-30", "language": "fr"},
        {"from": "2026-11-01", "to": "2026-11-30", "format": "docx"},
    ],
)
def test_bad_periods_get_a_400_with_a_message(client, compliance_officer, query):
    client.force_login(compliance_officer)
    response = client.get(PAGE, query)
    assert response.status_code == 400
    assert 'id="period-error"' in response.content.decode()
    assert not AccessEvent.objects.filter(action=AccessEvent.Action.COMPLIANCE_REPORT).exists()


def test_the_page_defaults_to_the_last_full_month(client, compliance_officer):
    client.force_login(compliance_officer)
    response = client.get(PAGE)
    assert response.status_code == 200
    default = report_pdf.last_full_month()
    assert f'value="{default.first_day.isoformat()}"' in response.content.decode()
    assert default.last_day.day >= 28 and default.first_day.day == 1


def test_the_pdf_download(client, center, compliance_officer):
    require_fonts()
    period = center["period"]
    client.force_login(compliance_officer)
    response = client.get(
        PAGE,
        {
            "from": period.first_day.isoformat(),
            "to": period.last_day.isoformat(),
            "format": "pdf",
            "language": "en",
        },
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert "attachment" in response["Content-Disposition"]
    reader = pypdf.PdfReader(io.BytesIO(response.content))
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert "Compliance report" in text
    assert "Recordings made without a granted consent" in text
    event = AccessEvent.objects.filter(action=AccessEvent.Action.COMPLIANCE_REPORT).get()
    assert event.detail["format"] == "pdf" and event.detail["language"] == "en"


def test_the_report_costs_the_same_queries_whatever_the_volume(center):
    period = center["period"]
    operator = Call.objects.filter(operator__isnull=False).first().operator
    with CaptureQueriesContext(connection) as small:
        compliance.build(start=period.start, end=period.end, language="ja")
    for offset in (1, 2, 3):
        calls_of_the_period(operator, offset=offset)
    with CaptureQueriesContext(connection) as large:
        report = build(period, "en")
    assert values(report["R3"])["Calls"] == ("24", None)
    assert len(large.captured_queries) == len(small.captured_queries)
