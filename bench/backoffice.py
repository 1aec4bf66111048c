"""Benchmark: the back office's pages at scale (not a test).

Builds, on PostgreSQL, ``--calls`` calls (default 10,000,000) with COPY: 80 % of them with a
stored recording, a consent record per call (the caller's), audit events for half as many
calls, about a fifth as many customers and ``--operators`` operators. Then it times every
page a supervisor, an operator and a caller use, in-process with Django's test client: the
admin's calls list (first page, page 5,000, a search by number), recordings list (first
page, page 3,000, status filter), consent ledger, audit trail, the supervisor's dashboard,
the operator's training list and the portal's "your calls" page. Each page is requested
``--requests`` times (default 20) after one warm-up request; the table shows the median and
the 95th percentile of the wall time and the number of SQL queries of one request.

    python -m bench.backoffice [--calls 10000000] [--requests 20] [--keep]

The benchmark works in a database of its own, named after ``BENCH_DATABASE_URL`` (default
postgres://postgres@127.0.0.1:5432/bench) with ``_backoffice`` appended: it is created and
migrated by the script and dropped at the end (``--keep`` keeps it; ``--reuse`` times an
already built one without building it again). Writes the numbers as JSON to ``--output``.
"""

import argparse
import hashlib
import json
import math
import os
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import psycopg

from bench.webhooks import bench_environment

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
SEARCHED_NUMBER = "+819010012345"
SEARCHED_NATIONAL = "090-1001-2345"  # the same number as people type it
FILLERS = {
    "character varying": "",
    "text": "",
    "integer": 0,
    "bigint": 0,
    "smallint": 0,
    "boolean": False,
    "jsonb": "{}",
    "json": "{}",
    "bytea": b"",
}


class Database:
    def __init__(self, url):
        parts = urlsplit(url)
        self.url = url
        self.name = parts.path.lstrip("/")
        self.admin_url = parts._replace(path="/postgres").geturl()

    def admin(self, *statements):
        with psycopg.connect(self.admin_url, autocommit=True) as connection:
            for statement in statements:
                connection.execute(statement)

    def create(self):
        self.admin(
            f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)', f'CREATE DATABASE "{self.name}"'
        )

    def drop(self):
        from django.db import connections

        connections.close_all()
        self.admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def setup_django(database):
    env = bench_environment(database.url)
    env["TWILIO_API_BASE_URL"] = "http://127.0.0.1:9"  # a closed port: nothing leaves
    env["AUDIT_ANCHOR_DIR"] = str(ROOT / "var" / "bench-backoffice-anchors")
    os.environ.update(env)

    import django

    django.setup()


def phone(n):
    """A valid Japanese mobile number (090-1000-0000 on), as phonenumbers accepts it."""
    return f"+8190{10_000_000 + n:08d}"


def columns(cursor, table):
    cursor.execute(
        "SELECT column_name, data_type, is_nullable, column_default, is_identity "
        "FROM information_schema.columns WHERE table_name = %s ORDER BY ordinal_position",
        [table],
    )
    return cursor.fetchall()


def copy_rows(connection, model, given, rows, now):
    """COPY ``rows`` (tuples for the ``given`` columns) into ``model``'s table; the columns
    not given that may not be NULL get an empty value of their type (``now`` for times)."""
    table = model._meta.db_table
    with connection.cursor() as cursor:
        extra, fillers = [], []
        for name, data_type, nullable, _default, _identity in columns(cursor, table):
            if name in given or name == "id" or nullable == "YES":
                continue
            extra.append(name)
            fillers.append(now if data_type.startswith("timestamp") else FILLERS.get(data_type, ""))
        names = ", ".join(f'"{name}"' for name in (*given, *extra))
        fillers = tuple(fillers)
        count = 0
        with cursor.copy(f'COPY "{table}" ({names}) FROM STDIN') as copy:
            for row in rows:
                copy.write_row(row + fillers)
                count += 1
        cursor.execute(
            f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), "  # noqa: S608
            f'COALESCE((SELECT MAX(id) FROM "{table}"), 1))'
        )
    return count


def build(database, calls, operators_count):
    """Migrate, make the people, then COPY the big tables; returns the rows made per table."""
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command
    from django.db import connection

    from audit.models import AccessEvent
    from consent.models import ConsentRecord
    from contactcenter.models import Call, Customer, Operator
    from contactcenter.roles import OPERATOR, SUPERVISOR
    from recordings.models import Recording

    call_command("migrate", verbosity=0, interactive=False)
    supervisor = User.objects.create_user("bench-supervisor", password=None, is_staff=True)
    supervisor.groups.add(Group.objects.get(name=SUPERVISOR))
    operators = []
    for n in range(operators_count):
        user = User.objects.create_user(f"bench-operator-{n}", password=None, is_staff=True)
        user.groups.add(Group.objects.get(name=OPERATOR))
        operators.append(
            Operator.objects.create(
                user=user,
                display_name=f"オペレーター{n:02d}",
                routing_address=f"client:op{n}",
                recording_acknowledged_at=datetime.now(UTC),
            )
        )
    operator_ids = [operator.pk for operator in operators]

    now = datetime.now(UTC)
    span = timedelta(days=3 * 365).total_seconds()
    customers = max(1, calls // 5)
    made = {}
    timings = {}
    connection.ensure_connection()
    raw = connection.connection
    # No per-row foreign key triggers while loading: the generated keys are right by
    # construction (the benchmark's own database, dropped afterwards).
    with raw.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")

    def timed(label, model, given, rows):
        started = time.perf_counter()
        with raw.transaction():
            made[label] = copy_rows(raw, model, given, rows, now)
        timings[label] = time.perf_counter() - started
        print(f"  {label}: {made[label]:,} rows in {timings[label]:.1f} s", flush=True)

    first_customer = 1
    timed(
        "customers",
        Customer,
        ("phone_number", "caller_id_status", "name", "recording_opted_out", "created_at"),
        ((phone(n), "presented", "", False, now) for n in range(customers)),
    )
    first_customer = Customer.objects.order_by("pk").values_list("pk", flat=True).first()

    def started_at(n):
        return now - timedelta(seconds=span * (calls - n) / calls)

    def call_rows():
        for n in range(calls):
            start = started_at(n)
            missed = n % 20 == 0
            recorded = n % 5 != 0 and not missed
            yield (
                f"CAbo{n:030d}",
                "inbound",
                phone(n % customers),
                "+81300000000",
                first_customer + n % customers,
                None if missed else operator_ids[n % len(operator_ids)],
                "no-answer" if missed else "completed",
                start,
                None if missed else start + timedelta(seconds=5),
                start + timedelta(seconds=185),
                180,
                "stopped" if recorded else "not_recorded",
                "ja",
                missed,
                0,
                start,
                start,
            )

    timed(
        "calls",
        Call,
        (
            "sid", "direction", "from_number", "to_number", "customer_id", "operator_id",
            "status", "started_at", "answered_at", "ended_at", "duration", "recording_state",
            "language", "missed", "last_sequence_number", "created_at", "updated_at",
        ),
        call_rows(),
    )  # fmt: skip
    first_call = Call.objects.order_by("pk").values_list("pk", flat=True).first()
    statuses = [Recording.Status.STORED] * 18 + [
        Recording.Status.COMPLETED,
        Recording.Status.FETCH_FAILED,
    ]
    wrapped_key = os.urandom(60)  # nonce (12) + data key (32) + tag (16), as wrap_key makes

    def recording_rows():
        for n in range(calls):
            if n % 5 == 0 or n % 20 == 0:
                continue
            start = started_at(n)
            sid = f"REbo{n:030d}"
            yield (
                sid,
                first_call + n,
                statuses[n % len(statuses)],
                180,
                2,
                "RecordVerb",
                start,
                f"{start:%Y/%m}/{sid}.ccrec",
                "bench",
                wrapped_key,
                1_440_000,
                1_440_060,
                hashlib.sha256(sid.encode()).hexdigest(),
                start + timedelta(minutes=5),
                start + timedelta(days=3 * 365),
                start,
                start,
            )

    timed(
        "recordings",
        Recording,
        (
            "sid", "call_id", "status", "duration", "channels", "source", "started_at",
            "blob_name", "key_id", "wrapped_key", "plaintext_size", "ciphertext_size",
            "plaintext_sha256", "stored_at", "retain_until",
            "created_at", "updated_at",
        ),
        recording_rows(),
    )  # fmt: skip
    timed(
        "consent records",
        ConsentRecord,
        ("customer_id", "call_id", "party_role", "decision", "method", "digits", "recorded_at"),
        (
            (
                first_customer + n % customers,
                first_call + n,
                ConsentRecord.PartyRole.values[0],
                ConsentRecord.Decision.GRANTED if n % 10 else ConsentRecord.Decision.REFUSED,
                ConsentRecord.Method.values[0],
                "1",
                started_at(n) + timedelta(seconds=3),
            )
            for n in range(calls)
        ),
    )
    actions = AccessEvent.Action.values

    def event_rows():
        previous = "0" * 64
        for n in range(calls // 2):
            digest = hashlib.sha256(f"{previous}{n}".encode()).hexdigest()
            yield (
                n + 1,
                started_at(2 * n) + timedelta(minutes=10),
                "bench-supervisor",
                actions[n % len(actions)],
                None,
                f"REbo{2 * n + 1:030d}",
                "quality",
                "{}",
                previous,
                digest,
            )
            previous = digest

    timed(
        "audit events",
        AccessEvent,
        (
            "seq", "occurred_at", "actor_label", "action", "recording_id", "recording_sid",
            "purpose", "detail", "previous_hash", "hash",
        ),
        event_rows(),
    )  # fmt: skip
    with raw.cursor() as cursor:
        cursor.execute("SET session_replication_role = origin")
    started = time.perf_counter()
    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    timings["analyze"] = time.perf_counter() - started
    print(f"  ANALYZE in {timings['analyze']:.1f} s", flush=True)
    return made, timings


def migrate_kept(database):
    """A kept database brought to the code's migrations (new indexes are built on the data)."""
    from django.core.management import call_command
    from django.db import connection

    started = time.perf_counter()
    call_command("migrate", verbosity=0, interactive=False)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(f"  {database.name} migrated in {time.perf_counter() - started:.1f} s", flush=True)


def pages(calls):
    """(label, who, URL) of every timed page: each admin list with each of its filters, its
    searches, a page deep in it (by key: the list's own "older" link from the middle of the
    table), a day to open it at, a row's page; the dashboard; the operator's and the caller's
    pages."""
    from datetime import date

    middle_call = first_pk("contactcenter_call") + calls // 2
    middle_recording = first_pk("recordings_recording") + calls * 4 // 10
    middle_consent = first_pk("consent_consentrecord") + calls // 2
    a_year_ago = (date.today() - timedelta(days=365)).isoformat()
    week = {
        "started_at__gte": (date.today() - timedelta(days=6)).isoformat(),
        "started_at__lt": (date.today() + timedelta(days=1)).isoformat(),
    }
    week_query = "&".join(f"{key}={value}" for key, value in week.items())
    calls_ = "/admin/contactcenter/call/"
    recordings = "/admin/recordings/recording/"
    consent = "/admin/consent/consentrecord/"
    trail = "/admin/audit/accessevent/"
    customers = "/admin/contactcenter/customer/"
    requests_ = "/admin/portal/customerrequest/"
    supervisor = [
        ("calls list", calls_),
        ("calls, older page from the middle", f"{calls_}?after={middle_call}"),
        ("calls, opened at a day a year ago", f"{calls_}?upto={a_year_ago}"),
        ("calls, search by number 090-…", f"{calls_}?q={SEARCHED_NATIONAL}"),
        ("calls, search by call SID", f"{calls_}?q=CAbo{calls // 3:030d}"),
        ("calls, search by operator name", f"{calls_}?q=オペレーター07"),
        ("calls, not answered", f"{calls_}?missed__exact=1"),
        ("calls, status failed (none)", f"{calls_}?status__exact=failed"),
        ("calls, recording stored", f"{calls_}?recording=stored"),
        ("calls, recording 取得失敗", f"{calls_}?recording=fetch_failed"),
        ("calls, no recording", f"{calls_}?recording=none"),
        ("calls, outbound (none)", f"{calls_}?direction__exact=outbound"),
        ("calls, last 7 days", f"{calls_}?{week_query}"),
        ("a call's page", f"{calls_}{middle_call}/change/"),
        ("recordings list", recordings),
        ("recordings, older page from the middle", f"{recordings}?after={middle_recording}"),
        ("recordings, status stored", f"{recordings}?status__exact=stored"),
        ("recordings, status 取得失敗", f"{recordings}?status__exact=fetch_failed"),
        ("recordings, on legal hold", f"{recordings}?held=yes"),
        ("recordings, due for purge this week", f"{recordings}?due=week"),
        ("recordings, with an error", f"{recordings}?error=any"),
        ("recordings, training material", f"{recordings}?training_material_at__isempty=0"),
        ("recordings, search by number", f"{recordings}?q={SEARCHED_NATIONAL}"),
        ("recordings, search by SID", f"{recordings}?q=REbo{calls // 3 + 1:030d}"),
        (
            "recordings of the last 7 days, stored (dashboard link)",
            f"{recordings}?call__{week_query.replace('&', '&call__')}&status=stored",
        ),
        ("a recording's page", f"{recordings}{middle_recording}/change/"),
        ("consent ledger", consent),
        ("consent, older page from the middle", f"{consent}?after={middle_consent}"),
        ("consent, refused", f"{consent}?decision__exact=refused"),
        ("consent, withdrawn", f"{consent}?decision__exact=withdrawn"),
        ("consent, method staff entry", f"{consent}?method__exact=staff_entry"),
        ("consent, search by number", f"{consent}?q={SEARCHED_NATIONAL}"),
        ("a consent record's page", f"{consent}{middle_consent}/change/"),
        ("audit trail", trail),
        ("audit, older page from the middle", f"{trail}?after={calls // 4}"),
        ("audit, opened at a day a year ago", f"{trail}?upto={a_year_ago}"),
        ("audit, action purge", f"{trail}?action__exact=purge"),
        ("audit, search by recording SID", f"{trail}?q=REbo{calls // 2 + 1:030d}"),
        ("an audit event's page", f"{trail}{first_pk('audit_accessevent') + calls // 4}/change/"),
        ("customers list", customers),
        ("customers, search by number", f"{customers}?q={SEARCHED_NATIONAL}"),
        ("customers, search by a part of the name", f"{customers}?q=山田"),
        ("a customer's page", f"{customers}{first_pk('contactcenter_customer') + 12345}/change/"),
        ("customer requests", requests_),
        ("customer requests, overdue", f"{requests_}?due=overdue"),
        ("dashboard", "/admin/dashboard/"),
    ]
    operator = [
        ("operator: own calls", calls_),
        ("operator: own calls, older page", f"{calls_}?after={middle_call}"),
        ("operator: training list", "/operator/training/"),
    ]
    return [
        *((label, "supervisor", url) for label, url in supervisor),
        *((label, "operator", url) for label, url in operator),
        ("portal: your calls", "caller", "/requests/mine/"),
    ]


def first_pk(table):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT MIN(id) FROM {table}")  # noqa: S608 - a table of ours
        return cursor.fetchone()[0] or 0


def clients():
    from django.contrib.auth.models import User
    from django.test import Client
    from django.utils import timezone
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    def client():
        return Client(SERVER_NAME=HOST, HTTP_HOST=HOST, secure=True, HTTP_X_FORWARDED_PROTO="https")

    supervisor = client()
    user = User.objects.get(username="bench-supervisor")
    supervisor.force_login(user)
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    device = device or TOTPDevice.objects.create(user=user, name="bench", confirmed=True)
    session = supervisor.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id  # as django_otp.login does
    session.save()

    operator = client()
    # Operator 0 takes no calls (every 20th call is missed, and those are its turns).
    operator.force_login(User.objects.get(username="bench-operator-1"))

    caller = client()
    session = caller.session
    session["portal_proven"] = {
        "number": SEARCHED_NUMBER,
        "at": timezone.now().isoformat(),
        "by": "sms",
    }
    session.save()
    caller.cookies["sessionid"] = session.session_key
    return {"supervisor": supervisor, "operator": operator, "caller": caller}


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1)]


def measure(calls, requests):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    who = clients()
    rows = []
    for label, role, url in pages(calls):
        client = who[role]
        response = client.get(url)  # warm up: code, templates, the planner's caches
        times = []
        queries = slowest = None
        for _ in range(requests):
            with CaptureQueriesContext(connection) as captured:
                started = time.perf_counter()
                response = client.get(url)
                times.append((time.perf_counter() - started) * 1000)
            queries = len(captured.captured_queries)
            slowest = max(captured.captured_queries, key=lambda query: float(query["time"]))
        rows.append(
            {
                "page": label,
                "url": url,
                "status": response.status_code,
                "location": response.get("Location", ""),
                "median_ms": statistics.median(times),
                "p95_ms": percentile(times, 0.95),
                "queries": queries,
                "slowest_query_ms": float(slowest["time"]) * 1000,
                "slowest_query": slowest["sql"][:300],
            }
        )
        print(
            f"  {label}: {response.status_code} median {rows[-1]['median_ms']:.0f} ms", flush=True
        )
    return rows


def print_table(rows):
    print(
        "| page | status | ms median | ms p95 | queries | slowest query ms |\n"
        "|---|---:|---:|---:|---:|---:|"
    )
    for row in rows:
        print(
            f"| {row['page']} | {row['status']} | {row['median_ms']:,.0f} | {row['p95_ms']:,.0f} "
            f"| {row['queries']} | {row['slowest_query_ms']:,.0f} |"
        )
    print()
    for row in rows:
        print(f"{row['page']}: slowest query {row['slowest_query']}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10_000_000)
    parser.add_argument("--operators", type=int, default=20)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--reuse", action="store_true", help="time an already built database")
    parser.add_argument(
        "--build-only", action="store_true", help="build (and keep) the database, time nothing"
    )
    parser.add_argument("--output", default=str(ROOT / "var" / "bench-backoffice.json"))
    args = parser.parse_args()

    base_url = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench")
    parts = urlsplit(base_url)
    database = Database(parts._replace(path=parts.path + "_backoffice").geturl())
    if not args.reuse:
        database.create()
    results = {"options": vars(args), "database": database.name}
    try:
        setup_django(database)
        if not args.reuse:
            print(f"building {args.calls:,} calls in {database.name}", flush=True)
            results["rows"], results["build_seconds"] = build(database, args.calls, args.operators)
        else:
            migrate_kept(database)
        if args.build_only:
            return
        results["pages"] = measure(args.calls, args.requests)
    finally:
        if not (args.keep or args.build_only):
            database.drop()
    print_table(results["pages"])
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
