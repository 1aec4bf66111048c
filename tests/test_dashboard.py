"""The supervisor's dashboard: today's and the last 7 and 30 days' figures, each linking to the
admin list of the rows it counted, in a constant number of queries, with SVG charts."""

from datetime import timedelta
from html.parser import HTMLParser
from urllib.parse import unquote

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from audit import anchors
from audit import services as audit_services
from audit.models import AccessEvent
from backoffice.tasks import refresh_daily_figures
from consent.models import ConsentRecord
from consent.services import record_consent
from contactcenter.models import Call
from portal.models import CustomerRequest
from recordings.models import LegalHold, Recording
from training.models import TrainingReview

from .factories import CallFactory

DASHBOARD = "/admin/dashboard/"


class Figures(HTMLParser):
    """The figures of the page by row id and column, with their links."""

    def __init__(self):
        super().__init__()
        self.row, self.link, self.cells, self.text = None, None, {}, ""

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("tr", "p") and attrs.get("id", "").startswith("figure-"):
            self.row = attrs["id"].removeprefix("figure-")
            self.cells.setdefault(self.row, [])
        if tag == "a" and self.row:
            self.link, self.text = attrs["href"], ""

    def handle_data(self, data):
        if self.link is not None:
            self.text += data

    def handle_endtag(self, tag):
        if tag == "a" and self.link is not None:
            self.cells[self.row].append((self.text.strip(), self.link))
            self.link = None
        if tag in ("tr", "p"):
            self.row = None


def figures_of(response):
    parser = Figures()
    parser.feed(response.content.decode())
    return parser.cells


def days_ago(days, hour=12):
    local = timezone.localtime().replace(hour=hour, minute=0, second=0, microsecond=0)
    return local - timedelta(days=days)


def recording(call, status, **fields):
    if status == Recording.Status.STORED:
        fields |= {"wrapped_key": b"k", "blob_name": f"{call.sid}.enc"}
    return Recording.objects.create(sid="RE" + call.sid[2:], call=call, status=status, **fields)


def caller_answer(call, decision, at):
    record_consent(
        customer=call.customer,
        call=call,
        party_role=ConsentRecord.PartyRole.CALLER,
        decision=decision,
        method=ConsentRecord.Method.VERBAL,
        recorded_by_system="test",
        at=at,
    )


@pytest.fixture
def center(db, notice, operator, supervisor):
    """Calls today (two: one answered, one missed), 3, 10 and 40 days ago, with consent
    answers, recordings in three states, a held and a due recording, two open requests (one
    overdue), a review awaiting feedback."""
    today_answered = CallFactory(
        operator=operator,
        started_at=days_ago(0, hour=0) + timedelta(minutes=5),
        answered_at=days_ago(0, hour=0) + timedelta(minutes=5),
    )
    today_missed = CallFactory(operator=None, started_at=days_ago(0, hour=0), missed=True)
    three_days = CallFactory(operator=operator, started_at=days_ago(3), answered_at=days_ago(3))
    ten_days = CallFactory(operator=operator, started_at=days_ago(10), answered_at=days_ago(10))
    old = CallFactory(operator=operator, started_at=days_ago(40), answered_at=days_ago(40))
    caller_answer(today_answered, ConsentRecord.Decision.GRANTED, today_answered.started_at)
    caller_answer(today_missed, ConsentRecord.Decision.REFUSED, today_missed.started_at)
    caller_answer(three_days, ConsentRecord.Decision.GRANTED, three_days.started_at)
    caller_answer(ten_days, ConsentRecord.Decision.REFUSED, ten_days.started_at)
    caller_answer(old, ConsentRecord.Decision.GRANTED, old.started_at)
    stored = recording(today_answered, Recording.Status.STORED)
    recording(three_days, Recording.Status.COMPLETED)
    recording(ten_days, Recording.Status.FETCH_FAILED)
    due = recording(old, Recording.Status.STORED, retain_until=timezone.now() + timedelta(days=3))
    LegalHold.objects.create(recording=stored, reason="litigation", placed_by=supervisor)
    CustomerRequest.objects.create(
        phone_number="+818000000001", kind="hear", due_at=timezone.now() + timedelta(days=5)
    )
    CustomerRequest.objects.create(
        phone_number="+818000000002", kind="copy", due_at=timezone.now() - timedelta(days=1)
    )
    CustomerRequest.objects.create(
        phone_number="+818000000003",
        kind="copy",
        due_at=timezone.now() - timedelta(days=1),
        status=CustomerRequest.Status.DONE,
    )
    TrainingReview.objects.create(recording=due, operator=operator, notes="n")
    return locals()


def test_each_figure_counts_its_window(client, supervisor, center):
    client.force_login(supervisor)
    response = client.get(DASHBOARD)
    assert response.status_code == 200
    cells = figures_of(response)
    value = {row: [text for text, _link in found] for row, found in cells.items()}
    # today, last 7 days, last 30 days (the call 40 days ago is in none)
    assert value["calls"] == ["2", "3", "4"]
    assert value["answered"] == ["1", "2", "3"]
    assert value["missed"] == ["1", "1", "1"]
    assert value["granted"] == ["1", "2", "2"]
    assert value["refused"] == ["1", "1", "2"]
    assert "(50%)" in response.content.decode()
    assert value["stored"] == ["1", "1", "1"]
    assert value["waiting"] == ["0", "1", "1"]
    assert value["fetch_failed"] == ["0", "0", "1"]
    assert value["due"] == ["1"]
    assert value["held"] == ["1"]
    assert value["requests-open"] == ["2"]
    assert value["requests-overdue"] == ["1"]
    assert value["awaiting"] == ["1"]
    assert 'class="overdue"' in response.content.decode()


def test_each_figure_links_to_the_list_of_the_rows_it_counted(client, supervisor, center):
    """Following a figure's link opens the admin list showing exactly that many rows."""
    client.force_login(supervisor)
    cells = figures_of(client.get(DASHBOARD))
    checked = 0
    for row in ("calls", "answered", "missed", "granted", "refused", "stored", "waiting"):
        for text, link in cells[row]:
            listed = client.get(link)
            assert listed.status_code == 200, (row, unquote(link))
            assert "?e=1" not in listed.get("Location", ""), link
            count = listed.context["cl"].result_count
            assert str(count) == text, (row, unquote(link), count)
            checked += 1
    for row in ("due", "held", "requests-open", "requests-overdue"):
        (text, link) = cells[row][0]
        listed = client.get(link)
        assert listed.status_code == 200
        assert str(listed.context["cl"].result_count) == text, row
        checked += 1
    assert checked == 25


def test_the_page_runs_a_constant_number_of_queries(client, supervisor, center, operator):
    client.force_login(supervisor)
    client.get(DASHBOARD)  # warm caches (content types, notice)
    with CaptureQueriesContext(connection) as few:
        client.get(DASHBOARD)
    for day in range(30):
        for _ in range(3):
            call = CallFactory(
                operator=operator, started_at=days_ago(day), answered_at=days_ago(day)
            )
            caller_answer(call, ConsentRecord.Decision.GRANTED, call.started_at)
            recording(call, Recording.Status.STORED)
    refresh_daily_figures()  # as Celery beat does every ten minutes: the past days counted again
    with CaptureQueriesContext(connection) as many:
        response = client.get(DASHBOARD)
    assert Call.objects.count() > 90
    assert len(many) == len(few), [q["sql"] for q in many.captured_queries]
    assert len(many) <= 20
    assert figures_of(response)["calls"][2][0] == str(4 + 90)


def test_the_charts_are_svg_drawn_on_the_server(client, supervisor, center):
    client.force_login(supervisor)
    page = client.get(DASHBOARD).content.decode()
    assert page.count('<svg class="chart"') == 2
    assert page.count('<rect class="bar"') == 30
    assert '<polyline class="rate-line" points="' in page
    assert "<script" not in page.split('id="dashboard"')[1]


def test_the_audit_head_is_checked_against_the_newest_checkpoint(client, supervisor, db):
    audit_services.record(AccessEvent.Action.values[0], actor_label="test")
    checkpoint = anchors.anchor()
    audit_services.record(AccessEvent.Action.values[0], actor_label="test")
    client.force_login(supervisor)
    page = client.get(DASHBOARD).content.decode()
    assert f"event {checkpoint.seq}" in page or f"イベント {checkpoint.seq}" in page
    assert 'class="ok"' in page


def test_only_staff_who_see_the_whole_center_see_the_dashboard(
    client, supervisor, compliance_officer, operator
):
    client.force_login(operator.user)
    assert client.get(DASHBOARD).status_code == 403
    assert reverse("backoffice:dashboard") not in client.get("/admin/").content.decode()
    client.force_login(compliance_officer)
    assert client.get(DASHBOARD).status_code == 200
    client.force_login(supervisor)
    assert reverse("backoffice:dashboard") in client.get("/admin/").content.decode()
    client.logout()
    assert client.get(DASHBOARD).status_code == 302
