"""What a client sends cannot forge a log line or a spreadsheet formula (issue 14, row 9): the
log formatter escapes control characters in messages, and the audit trail's CSV export
quotes cells a spreadsheet would run, blanks and fullwidth signs included."""

import csv
import io
import logging
import re
import sys

import pytest
from django.urls import reverse

from audit import services as audit
from audit.models import AccessEvent
from contactcenter.security import ControlCharacterEscapingFormatter, escape_control_characters

pytestmark = pytest.mark.django_db


@pytest.fixture
def log_output():
    """What the console handler of the project's LOGGING writes, as text."""
    handlers = [
        handler
        for handler in logging.getLogger().handlers
        if isinstance(handler.formatter, ControlCharacterEscapingFormatter)
    ]
    assert handlers, "the root logger has no handler with the escaping formatter"
    stream = io.StringIO()
    previous = [handler.setStream(stream) for handler in handlers]
    yield stream
    for handler, old in zip(handlers, previous, strict=True):
        handler.setStream(old)


def test_a_newline_in_an_unsigned_webhooks_callsid_cannot_forge_a_log_line(client, log_output):
    forged = "CA1\n2026-12-01 12:00:00,000 INFO telephony.views: signature ok\r\x1b[2K"

    response = client.post(reverse("twilio-voice-incoming"), {"CallSid": forged})

    assert response.status_code == 403
    lines = log_output.getvalue().splitlines()
    [line] = [line for line in lines if "Rejected Twilio webhook" in line]
    # Every line is a record of ours (the other is django.request's "Forbidden"), none forged.
    assert all(re.match(r"\d{4}-\d\d-\d\d [\d:,]+ WARNING [\w.]+: ", line) for line in lines)
    assert not any("12:00:00,000 INFO" in line[:40] for line in lines)
    assert "CA1\\n2026-12-01 12:00:00,000 INFO" in line
    assert "\\r\\x1b[2K" in line


def test_a_traceback_keeps_its_lines_but_the_message_does_not():
    formatter = ControlCharacterEscapingFormatter("%(levelname)s %(message)s")
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord(
            "x", logging.ERROR, __file__, 1, "failed for %s", ("a\nb",), exc_info=True
        )
        record.exc_info = sys.exc_info()

    text = formatter.format(record)

    assert text.splitlines()[0] == "ERROR failed for a\\nb"
    assert "Traceback (most recent call last):" in text.splitlines()[1]


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("a\nb", "a\\nb"),
        ("a\r\nb", "a\\r\\nb"),
        ("tab\there", "tab\\there"),
        ("\x00\x1b\x7f\x85", "\\x00\\x1b\\x7f\\x85"),
        ("line\u2028sep\u2029", "line\\u2028sep\\u2029"),
        ("rtl\u202eevil", "rtl\\u202eevil"),
        ("日本語 ok", "日本語 ok"),
    ],
)
def test_control_characters_are_written_as_escapes(raw, escaped):
    assert escape_control_characters(raw) == escaped


# --- the CSV export ------------------------------------------------------------------------

DANGEROUS_CELLS = [
    '=HYPERLINK("http://x")',
    "+1+1",
    "-1+1",
    "@SUM(A1)",
    "\t=1+1",
    "\r=1+1",
    " =1+1",
    "\n=1+1",
    "\u3000=1+1",
    "\uff1d1+1",  # ＝
    "\uff0b1+1",  # ＋
    "\uff0d1+1",  # －
    "\uff20SUM(A1)",  # ＠
    "\u3000\uff1dcmd|' /C calc'!A0",
]


def _export(client, user):
    client.force_login(user)
    response = client.get(reverse("admin:audit_accessevent_export"))
    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text)))


def test_every_cell_a_spreadsheet_would_run_is_quoted(client, compliance_officer):
    for value in DANGEROUS_CELLS:
        audit.record(AccessEvent.Action.REFUSED, actor_label=value, detail={"reason": "test"})

    rows = _export(client, compliance_officer)

    labels = [row["actor_label"] for row in rows if row["action"] == AccessEvent.Action.REFUSED]
    assert labels == ["'" + value for value in DANGEROUS_CELLS]


def test_ordinary_cells_are_left_as_they_are(client, compliance_officer):
    ordinary = ["supervisor", "customer +819011112222", "山田 太郎", "a=b", "x-1"]
    for value in ordinary:
        audit.record(AccessEvent.Action.REFUSED, actor_label=value, detail={"reason": "test"})

    rows = _export(client, compliance_officer)

    assert [
        row["actor_label"] for row in rows if row["action"] == AccessEvent.Action.REFUSED
    ] == ordinary
