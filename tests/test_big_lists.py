"""Issue 15 (deliver 5): the lists of the tables that grow by millions of rows are paged by key
("older" / "newer", never OFFSET), counted without COUNT(*) beyond 1,000 rows, opened at a
day, and run the same number of queries on every page."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit import services as audit
from audit.models import AccessEvent
from contactcenter.bigtables import EXACT_UP_TO
from contactcenter.models import Call, Customer

from .factories import CallFactory, CustomerFactory
from .helpers.services import require_service

pytestmark = pytest.mark.django_db

TOKYO = ZoneInfo("Asia/Tokyo")
CALLS = reverse("admin:contactcenter_call_changelist")
CUSTOMERS = reverse("admin:contactcenter_customer_changelist")
TRAIL = reverse("admin:audit_accessevent_changelist")


@pytest.fixture
def calls(operator):
    """125 calls over three days; every fifth pair starts at the same instant (ties)."""
    first = datetime(2027, 2, 19, 9, 0, tzinfo=TOKYO)
    made = []
    for n in range(125):
        started = first + timedelta(minutes=30 * (n // 2 if n % 5 == 0 else n))
        made.append(CallFactory(operator=operator, started_at=started))
    return made


def newest_first(rows):
    return sorted(rows, key=lambda call: (call.started_at, call.pk), reverse=True)


def walk(client, url, link="older_url"):
    """Every page from ``url`` on, following the list's own links: (rows, pages, the number of
    queries of each page)."""
    client.get(url)  # the login's first request also writes its session
    seen, pages, queries = [], 0, []
    while url:
        with CaptureQueriesContext(connection) as captured:
            response = client.get(url)
        assert response.status_code == 200, url
        cl = response.context["cl"]
        seen += list(cl.result_list)
        pages += 1
        queries.append(len(captured))
        next_url = getattr(cl, link)
        url = f"{CALLS}{next_url}" if next_url else None
    return seen, pages, queries


def test_older_links_walk_every_call_once_newest_first_in_the_same_queries(
    client, supervisor, calls
):
    client.force_login(supervisor)
    seen, pages, queries = walk(client, CALLS)
    assert pages == 3  # 50 + 50 + 25
    assert [call.pk for call in seen] == [call.pk for call in newest_first(calls)]
    # Page 3 costs what page 2 does; a page after the first reads the key of the row it
    # follows (one query by primary key).
    assert queries[1] == queries[2] <= queries[0] + 1, queries


def test_newer_links_walk_back_to_the_first_page(client, supervisor, calls):
    client.force_login(supervisor)
    last_page = client.get(CALLS).context["cl"]
    last_page = client.get(f"{CALLS}{last_page.older_url}").context["cl"]
    last_page = client.get(f"{CALLS}{last_page.older_url}").context["cl"]
    assert last_page.older_url is None
    assert len(last_page.result_list) == 25
    seen, pages, _queries = walk(client, f"{CALLS}{last_page.newer_url}", link="newer_url")
    assert pages == 2
    ordered = newest_first(calls)
    assert [call.pk for call in seen] == [call.pk for call in ordered[50:100] + ordered[:50]]
    assert client.get(f"{CALLS}{last_page.newer_url}").context["cl"].newest_url


def test_the_page_says_its_links_and_count_in_japanese(client, supervisor, calls):
    client.force_login(supervisor)
    page = client.get(CALLS, HTTP_ACCEPT_LANGUAGE="ja").content.decode()
    assert "古い 50 件 →" in page
    assert "125 件" in page
    assert "日の終わりから表示" in page


def test_a_day_opens_the_list_at_the_end_of_that_day(client, supervisor, calls):
    client.force_login(supervisor)
    cl = client.get(CALLS, {"upto": "2027-02-20"}).context["cl"]
    end = datetime(2027, 2, 21, tzinfo=TOKYO)
    expected = [call for call in newest_first(calls) if call.started_at < end][:50]
    assert [call.pk for call in cl.result_list] == [call.pk for call in expected]
    assert cl.newest_url  # a way back to the newest calls


@pytest.mark.parametrize(
    "params", [{"after": "abc"}, {"before": "1; DROP"}, {"upto": "2027-13-45"}, {"after": "99999"}]
)
def test_a_bad_cursor_or_day_is_refused_and_changes_nothing(client, supervisor, calls, params):
    client.force_login(supervisor)
    response = client.get(CALLS, params)
    assert response.status_code == 302
    assert response["Location"].endswith("?e=1")  # the admin's "invalid parameters" answer
    assert Call.objects.count() == 125


def test_filters_and_searches_start_again_from_the_newest_rows(client, supervisor, calls):
    client.force_login(supervisor)
    second = client.get(CALLS).context["cl"].older_url
    cl = client.get(f"{CALLS}{second}").context["cl"]
    assert "after=" not in cl.get_query_string({"missed__exact": "1"})


def test_up_to_a_thousand_rows_are_counted_exactly_then_said_to_be_more(client, supervisor):
    Customer.objects.bulk_create(
        Customer(phone_number=f"+81901{n:07d}") for n in range(EXACT_UP_TO + 5)
    )
    client.force_login(supervisor)
    cl = client.get(CUSTOMERS, HTTP_ACCEPT_LANGUAGE="ja").context["cl"]
    assert cl.result_count > EXACT_UP_TO
    assert not cl.result_count.exact
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE contactcenter_customer")
        cl = client.get(CUSTOMERS, HTTP_ACCEPT_LANGUAGE="ja").context["cl"]
        assert cl.result_count.label.startswith("約 ")
        assert cl.result_count.label.endswith("件（推定）")
    else:
        assert cl.result_count.label == "1,000 件以上"
    cl = client.get(CUSTOMERS, {"q": "+819010000001"}).context["cl"]
    assert cl.result_count == 1
    assert cl.result_count.exact


def test_the_count_never_reads_the_whole_table(client, supervisor, calls):
    client.force_login(supervisor)
    with CaptureQueriesContext(connection) as captured:
        client.get(CALLS)
    counts = [
        query["sql"]
        for query in captured
        if "COUNT(" in query["sql"].upper() and "contactcenter_call" in query["sql"]
    ]
    assert counts, "the list counts its rows"
    assert all(f"LIMIT {EXACT_UP_TO + 1}" in sql for sql in counts), counts


def test_the_audit_trail_is_paged_by_its_sequence_and_opened_at_a_day(client, supervisor):
    for n in range(120):
        audit.record(AccessEvent.Action.PLAYBACK, actor_label=f"listener{n}")
    client.force_login(supervisor)
    cl = client.get(TRAIL).context["cl"]
    assert [event.seq for event in cl.result_list] == list(range(120, 70, -1))
    older = client.get(f"{TRAIL}{cl.older_url}").context["cl"]
    assert [event.seq for event in older.result_list] == list(range(70, 20, -1))
    today = AccessEvent.objects.get(seq=1).occurred_at.astimezone(TOKYO).date()
    cl = client.get(TRAIL, {"upto": (today - timedelta(days=1)).isoformat()}).context["cl"]
    assert list(cl.result_list) == []
    cl = client.get(TRAIL, {"upto": today.isoformat()}).context["cl"]
    assert cl.result_list[0].seq == 120


def test_customers_are_found_by_the_beginning_of_the_name(client, supervisor):
    CustomerFactory(name="山田 花子")
    CustomerFactory(name="佐藤 一郎")
    CustomerFactory(name="Yamada Hanako")
    client.force_login(supervisor)

    def found(term):
        cl = client.get(CUSTOMERS, {"q": term}).context["cl"]
        return [customer.name for customer in cl.result_list]

    assert found("山田") == ["山田 花子"]
    assert found("yamada") == ["Yamada Hanako"]
    assert found("花子") == []  # a name is searched from its beginning, on an index


def test_an_operators_own_calls_are_read_by_the_operators_key(client, operator, other_operator):
    mine = CallFactory(operator=operator)
    CallFactory(operator=other_operator)
    client.force_login(operator.user)
    cl = client.get(CALLS).context["cl"]
    assert list(cl.result_list) == [mine]
    assert cl.result_count == 1


@pytest.mark.postgresql
def test_the_applications_connections_are_offered_no_parallel_workers(db):
    """A page of rows along an index: parallel workers would cost more to start than the
    query takes (DATABASE_PARALLEL_WORKERS, default 0)."""
    if connection.vendor != "postgresql":
        require_service("PostgreSQL", "DATABASE_URL is not a postgres:// URL")
    with connection.cursor() as cursor:
        cursor.execute("SHOW max_parallel_workers_per_gather")
        assert cursor.fetchone()[0] == "0"
