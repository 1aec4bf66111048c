"""The admin's lists read at a glance: the columns people look for, newest first, Japanese
labels on the audit trail, and a constant number of queries whatever the page's length."""

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit import services as audit
from audit.models import AccessEvent
from consent.models import ConsentRecord
from consent.services import record_consent
from recordings.models import Recording

from .factories import CallFactory, CustomerFactory, OperatorFactory, PurposeFactory, UserFactory

pytestmark = pytest.mark.django_db

TOKYO = ZoneInfo("Asia/Tokyo")


@pytest.fixture
def root(client):
    user = UserFactory(username="root", is_superuser=True)
    client.force_login(user)
    return user


def a_call(n=0):
    return CallFactory(
        customer=CustomerFactory(phone_number=f"+8190{n:08d}"),
        operator=OperatorFactory(display_name=f"佐藤{n}"),
        started_at=datetime(2027, 2, 23, 23, 30, tzinfo=TOKYO),
        duration=125,
    )


def a_recording(n=0):
    return Recording.objects.create(
        sid=f"RE{n:032x}", call=a_call(n), status=Recording.Status.COMPLETED, duration=125
    )


def header_texts(html):
    head = re.search(r"<thead>(.*?)</thead>", html, re.S).group(1)
    return [
        re.sub(r"<[^>]+>", "", cell).strip()
        for cell in re.findall(r"<th[^>]*>(.*?)</th>", head, re.S)
    ]


def rows(html):
    body = re.search(r'<table id="result_list">.*?<tbody>(.*?)</tbody>', html, re.S).group(1)
    return re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)


def queries_for(client, url):
    client.get(url)  # once first: the session and the permission caches are not the page's
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


# --- recordings --------------------------------------------------------------------------


def test_the_recordings_list_shows_date_caller_operator_length_and_status(client, root):
    a_recording(1)
    response = client.get(reverse("admin:recordings_recording_changelist"))
    html = response.content.decode()
    headers = header_texts(html)
    for column in ["通話日時", "発信者", "オペレーター", "通話時間", "状態"]:
        assert any(column in header for header in headers), (column, headers)
    (row,) = rows(html)
    assert "2027-02-23 23:30" in row  # the call's date in Tokyo time, not UTC (14:30)
    assert '<span class="nowrap">090-0000-0001</span>' in row
    assert "佐藤1" in row
    assert "2:05" in row
    # The SID is shortened, the whole of it in the title.
    assert f'title="RE{1:032x}"' in row
    assert f">RE{1:032x}<" not in row


def test_the_recordings_list_is_newest_first(client, root):
    first, second = a_recording(1), a_recording(2)
    html = client.get(reverse("admin:recordings_recording_changelist")).content.decode()
    listed = rows(html)
    assert second.sid in listed[0] and first.sid in listed[1]


def test_the_recordings_list_takes_as_many_queries_for_20_rows_as_for_1(client, root):
    url = reverse("admin:recordings_recording_changelist")
    a_recording(0)
    one = queries_for(client, url)
    for n in range(1, 20):
        a_recording(n)
    assert queries_for(client, url) == one


# --- the audit trail ---------------------------------------------------------------------


def test_the_audit_trail_is_newest_first_with_japanese_labels(client, root):
    PurposeFactory(code="lists-quality", name_ja="品質の向上", name_en="Service quality")
    audit.record(AccessEvent.Action.KEY_ROTATION, actor_label="key rotation")
    audit.record(
        AccessEvent.Action.PLAYBACK,
        actor_label="customer +819012345678",
        purpose="lists-quality",
        detail={"channel": "phone", "reason": "本人の請求"},
    )
    html = client.get(reverse("admin:audit_accessevent_changelist")).content.decode()
    newest, oldest = rows(html)
    assert "再生" in newest  # the action's label, not "playback"
    assert "品質の向上" in newest and "lists-quality" not in newest
    assert "お客様 (090-1234-5678)" in newest and "customer" not in newest
    assert "経路" in newest and ": phone" in newest and "理由" in newest
    assert "{" not in newest  # the detail as key: value lines, not JSON
    assert "鍵のローテーション" in oldest


def test_the_audit_trail_speaks_english_on_request(client, root):
    PurposeFactory(code="lists-quality", name_ja="品質の向上", name_en="Service quality")
    audit.record(AccessEvent.Action.PLAYBACK, actor_label="root", purpose="lists-quality")
    client.cookies["django_language"] = "en"
    html = client.get(reverse("admin:audit_accessevent_changelist")).content.decode()
    (row,) = rows(html)
    assert "Service quality" in row and "Playback" in row


def test_the_audit_trail_takes_as_many_queries_for_20_rows_as_for_1(client, root):
    url = reverse("admin:audit_accessevent_changelist")
    PurposeFactory(code="lists-quality")
    recording = a_recording(0)
    audit.record(
        AccessEvent.Action.PLAYBACK, actor=root, recording=recording, purpose="lists-quality"
    )
    one = queries_for(client, url)
    for _ in range(19):
        audit.record(
            AccessEvent.Action.PLAYBACK, actor=root, recording=recording, purpose="lists-quality"
        )
    assert queries_for(client, url) == one


# --- calls and the consent ledger --------------------------------------------------------


def test_the_calls_list_formats_numbers_lengths_and_sids(client, root):
    call = a_call(3)
    html = client.get(reverse("admin:contactcenter_call_changelist")).content.decode()
    (row,) = rows(html)
    assert '<span class="nowrap">090-0000-0003</span>' in row
    assert "2:05" in row
    assert f'title="{call.sid}"' in row


def test_the_calls_list_takes_as_many_queries_for_20_rows_as_for_1(client, root):
    url = reverse("admin:contactcenter_call_changelist")
    a_call(0)
    one = queries_for(client, url)
    for n in range(1, 20):
        a_call(n)
    assert queries_for(client, url) == one


def a_consent(n):
    call = a_call(n)
    return record_consent(
        customer=call.customer,
        call=call,
        party_role=ConsentRecord.PartyRole.CALLER,
        decision=ConsentRecord.Decision.GRANTED,
        method=ConsentRecord.Method.IVR_KEYPRESS,
        digits="1",
    )


def test_the_consent_ledger_formats_numbers_and_sids(client, root):
    record = a_consent(4)
    html = client.get(reverse("admin:consent_consentrecord_changelist")).content.decode()
    (row,) = rows(html)
    assert '<span class="nowrap">090-0000-0004</span>' in row
    assert f'title="{record.call.sid}"' in row


def test_the_consent_ledger_takes_as_many_queries_for_20_rows_as_for_1(client, root):
    url = reverse("admin:consent_consentrecord_changelist")
    a_consent(0)
    one = queries_for(client, url)
    for n in range(1, 20):
        a_consent(n)
    assert queries_for(client, url) == one
