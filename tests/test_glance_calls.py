"""Issue 15, item 1: the calls list and the call page say what became of each call's recording
(stored, waiting, 取得失敗, purged, none) from its Recording rows, in a constant number of
queries, instead of 「録音なし」 for every call."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext

from recordings.models import Recording
from twilio_emulator.server import synthetic_wav

from . import factories

pytestmark = pytest.mark.django_db

CALLS = reverse("admin:contactcenter_call_changelist")


def row_of(page, sid):
    for row in re.findall(r"<tr[^>]*>.*?</tr>", page.content.decode(), re.S):
        if sid in row:
            return row
    raise AssertionError(f"{sid} is not listed")


def recording_on(call, status):
    return Recording.objects.create(sid="RE" + call.sid[2:], call=call, status=status, channels=2)


def test_the_list_and_the_page_say_what_became_of_the_recording(
    client, supervisor, operator, notice
):
    stored = factories.stored_recording(operator, audio=synthetic_wav(1))
    assert stored.status == Recording.Status.STORED
    waiting = recording_on(factories.consented_call(operator), Recording.Status.COMPLETED)
    failed = recording_on(factories.consented_call(operator), Recording.Status.FETCH_FAILED)
    purged = recording_on(factories.consented_call(operator), Recording.Status.PURGED)
    unrecorded = factories.consented_call(operator)
    client.force_login(supervisor)
    page = client.get(CALLS)
    assert page.status_code == 200
    stored_row = row_of(page, stored.call.sid)
    assert "保存済み" in stored_row and "録音なし" not in stored_row
    assert "取得待ち" in row_of(page, waiting.call.sid)
    assert "取得失敗" in row_of(page, failed.call.sid)
    assert "削除済み" in row_of(page, purged.call.sid)
    with translation.override("ja"):
        assert gettext("No recording") in row_of(page, unrecorded.sid)

    def filtered(value):
        listed = client.get(CALLS, {"recording": value})
        assert listed.status_code == 200
        return {call.pk for call in listed.context["cl"].result_list}

    assert filtered("stored") == {stored.call.pk}
    assert filtered("fetch_failed") == {failed.call.pk}
    assert filtered("none") == {unrecorded.pk}

    call_page = client.get(reverse("admin:contactcenter_call_change", args=[stored.call.pk]))
    assert call_page.status_code == 200
    text = call_page.content.decode()
    assert "保存済み（暗号化）" in text
    assert "録音なし" not in text


def queries_for_list(client):
    with CaptureQueriesContext(connection) as queries:
        assert client.get(CALLS).status_code == 200
    return len(queries)


def test_the_calls_list_reads_a_constant_number_of_queries(client, supervisor, operator, notice):
    client.force_login(supervisor)
    recording_on(factories.consented_call(operator), Recording.Status.COMPLETED)
    queries_for_list(client)  # the session's first page reads what later pages have cached
    one = queries_for_list(client)
    for _ in range(19):
        recording_on(factories.consented_call(operator), Recording.Status.FETCH_FAILED)
    assert queries_for_list(client) == one
