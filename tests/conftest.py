"""Fixtures shared by the whole suite. Helpers that are not fixtures live in tests/helpers/."""

import os
import shutil
from datetime import timedelta

import pytest
import redis
from django.conf import settings
from django.utils import timezone

from contactcenter.roles import COMPLIANCE, SUPERVISOR

from .factories import PurposeFactory, UserFactory
from .helpers.browser import CHROMIUM, CHROMIUM_ARGS, log_in  # noqa: F401
from .helpers.project import (  # noqa: F401
    BASE_DIR,
    SETTINGS_VARIABLES_PREFIXES,
    production_variables,
    project_env,
    run_project,
)
from .helpers.second_factor import VerifiedClient
from .helpers.services import IN_CI, celery_config, require_service  # noqa: F401
from .helpers.staff import acknowledged_operator, restore_roles
from .helpers.webhooks import twilio_post  # noqa: F401


def pytest_report_header(config):
    database = settings.DATABASES["default"]
    return [
        f"database: {database['ENGINE'].rsplit('.', 1)[-1]} ({database['NAME']})",
        f"celery broker: {settings.REDIS_URL or 'none (tasks run in-process)'}",
    ]


@pytest.fixture
def client():
    """Django's test client; ``force_login`` of a supervisor or compliance officer also passes
    the second factor the admin asks them for (tests of that step use a plain ``Client``)."""
    return VerifiedClient()


@pytest.fixture
def redis_url():
    """A reachable Redis: the configured REDIS_URL, or the local default."""
    url = settings.REDIS_URL or "redis://127.0.0.1:6379/0"
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as error:
        require_service("Redis", f"{url}: {error}")
    finally:
        client.close()
    return url


@pytest.fixture
def live_db(transactional_db):
    """Committed data visible to other threads and processes, with the roles in place."""
    restore_roles()


@pytest.fixture(scope="session", autouse=True)
def _emptying_between_tests_passes_the_audit_guard():
    """Tests with committed data (``transactional_db``, ``live_server``) end with Django's
    ``flush``, which TRUNCATEs every table; on PostgreSQL the access audit trail's trigger
    refuses that, as it should for the app. Emptying the test database is maintenance, not
    the app, so it runs with ``session_replication_role = replica``, in which ordinary
    triggers (row and TRUNCATE alike) do not fire. Setting it needs a superuser, which the
    test database user is."""
    from django.db import connections
    from django.test import TransactionTestCase

    flush = TransactionTestCase._fixture_teardown

    def set_replication_role(test_case, role):
        for alias in test_case._databases_names(include_mirrors=False):
            if connections[alias].vendor == "postgresql":
                with connections[alias].cursor() as cursor:
                    cursor.execute(f"SET session_replication_role = {role}")

    def flush_past_the_guard(test_case):
        set_replication_role(test_case, "replica")
        try:
            flush(test_case)
        finally:
            set_replication_role(test_case, "DEFAULT")

    TransactionTestCase._fixture_teardown = flush_past_the_guard
    yield
    TransactionTestCase._fixture_teardown = flush


@pytest.fixture(autouse=True)
def _fresh_notice_cache():
    """Each test starts without another test's published notices in the process cache."""
    from privacy.services import forget_published_notices

    forget_published_notices()
    yield
    forget_published_notices()


@pytest.fixture(autouse=True)
def _outbox_publishes_on_commit():
    """A broker outage in one test leaves this process publishing through the relay for a
    while (``recordings.outbox``); the next test starts with the broker trusted again."""
    from recordings import outbox

    outbox.resume_publishing()
    yield
    outbox.resume_publishing()


@pytest.fixture(scope="session", autouse=True)
def _no_persistent_connections():
    """Every live-server request runs in a thread of its own, and a connection kept open
    past its request would outlive the thread and keep the test database from being
    dropped. Tests close their connections after each request."""
    from django.db import connections

    for alias in connections:
        connections.settings[alias]["CONN_MAX_AGE"] = 0


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _recordings_in_tmp(settings, tmp_path):
    """Each test gets its own recordings directory."""
    settings.STORAGES = {
        **settings.STORAGES,
        "recordings": {
            **settings.STORAGES["recordings"],
            "OPTIONS": {
                **settings.STORAGES["recordings"]["OPTIONS"],
                "location": str(tmp_path / "recordings"),
            },
        },
    }


@pytest.fixture
def notice(db):
    """A published notice with a quality and a training purpose (modules may define their own)."""
    from .factories import recording_notice

    return recording_notice()


@pytest.fixture
def quality(db):
    """The notice tests' quality purpose (a year); the consent tests define their own."""
    return PurposeFactory(
        code="quality",
        name_ja="品質向上",
        name_en="service quality",
        retention_days=365,
        allows_training_review=False,
    )


@pytest.fixture
def training(db):
    """The notice tests' training purpose (90 days, reviewable by operators)."""
    return PurposeFactory(
        code="training",
        name_ja="研修",
        name_en="operator training",
        retention_days=90,
        allows_training_review=True,
    )


@pytest.fixture
def nine():
    """09:00 tomorrow in Tokyo: a fixed time at which a notice may still be made to take effect."""
    tomorrow = timezone.localtime() + timedelta(days=1)
    return tomorrow.replace(hour=9, minute=0, second=0, microsecond=0)


@pytest.fixture
def supervisor(db):
    return UserFactory(username="supervisor", roles=[SUPERVISOR])


@pytest.fixture
def compliance_officer(db):
    return UserFactory(username="compliance", roles=[COMPLIANCE])


@pytest.fixture
def operator(db):
    return acknowledged_operator("operator")


@pytest.fixture
def other_operator(db):
    return acknowledged_operator("other-operator")


# --- a real browser ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium():
    """Debian's Chromium driven by Playwright (``npx playwright install`` cannot run here)."""
    if not os.path.exists(CHROMIUM):
        require_service("Chromium", f"{CHROMIUM} is missing (apt-get install chromium)")
    # Playwright's sync API runs an event loop in this thread; the ORM calls the tests make
    # between browser steps are ordinary synchronous code, so Django may allow them.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium, live_server):
    """A fresh browser context (no cookies) on a phone-sized or desktop window."""
    context = chromium.new_context(
        base_url=live_server.url, viewport={"width": 1280, "height": 900}
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def axe_page(chromium, live_server):
    """A fresh desktop browser context in Japanese that bypasses the Content-Security-Policy,
    so that axe-core can be injected into its pages (``helpers.browser.axe_violations``).
    The policy still blocks nothing our pages need (tests/test_browser_csp.py), so the pages
    look and behave as they do under it."""
    context = chromium.new_context(
        base_url=live_server.url,
        viewport={"width": 1280, "height": 900},
        locale="ja-JP",
        bypass_csp=True,
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()


# --- Twilio: the local emulator and signed webhooks ----------------------------------------


@pytest.fixture
def twilio(settings):
    """The local Twilio emulator over HTTP; the app's twilio client is pointed at it."""
    from twilio_emulator import Emulator

    with Emulator(
        account_sid=settings.TWILIO_ACCOUNT_SID, auth_token=settings.TWILIO_AUTH_TOKEN
    ) as emulator:
        settings.TWILIO_API_BASE_URL = emulator.url
        settings.TWILIO_ACCOUNTS_BASE_URL = emulator.url
        yield emulator


@pytest.fixture
def live_call(operator, twilio):
    """A call in progress, answered by ``operator``, whose recording is running at (emulated)
    Twilio; ``live_call.twilio_recording_sid`` names that recording."""
    import requests

    from contactcenter.models import Call

    from .factories import CallFactory

    call = CallFactory(
        operator=operator,
        status=Call.Status.IN_PROGRESS,
        recording_state=Call.RecordingState.RECORDING,
    )
    requests.post(f"{twilio.url}/_emulator/calls", json={"sid": call.sid}, timeout=5)
    recording = requests.post(
        f"{twilio.url}/_emulator/calls/{call.sid}/recordings",
        json={"source": "DialVerb"},
        timeout=5,
    ).json()
    call.twilio_recording_sid = recording["sid"]
    return call


@pytest.fixture
def driver(live_server, twilio):
    """Plays Twilio's part in whole calls against the live server (signed webhooks)."""
    from twilio_emulator import CallDriver

    return CallDriver(
        app_url=live_server.url,
        public_base_url=settings.PUBLIC_BASE_URL,
        account_sid=settings.TWILIO_ACCOUNT_SID,
        auth_token=settings.TWILIO_AUTH_TOKEN,
        emulator_url=twilio.url,
    )


# --- Celery: which broker the tests' own process publishes to ------------------------------


@pytest.fixture
def tasks_in_process():
    """Tasks run in this process when published, whatever REDIS_URL says."""
    with celery_config(task_always_eager=True, task_eager_propagates=True) as app:
        yield app


@pytest.fixture
def retries_at_once(tasks_in_process, monkeypatch):
    """Tasks run in this process, and each retry at once (no countdown)."""
    from recordings import tasks

    monkeypatch.setattr(tasks, "BACKOFF_BASE_SECONDS", 0)
    tasks_in_process.conf.task_eager_propagates = False  # a retry is not a failure
    return tasks_in_process


@pytest.fixture
def broker(tmp_path):
    """A Redis of the test's own, started: this process (webhooks, the outbox relay) publishes
    to it and the test's Celery workers consume from it."""
    from .helpers.services import PrivateRedis

    if shutil.which("redis-server") is None:
        require_service("Redis", "redis-server is not installed")
    server = PrivateRedis(tmp_path).start()
    with celery_config(task_always_eager=False, broker_url=server.url, result_backend=None):
        yield server
    server.stop()


@pytest.fixture
def broker_down():
    """Publishing fails at once: Redis is down (nothing listens on port 1)."""
    with celery_config(
        task_always_eager=False,
        broker_url="redis://127.0.0.1:1/0",
        broker_connection_timeout=1,
        broker_connection_retry=False,
        broker_connection_max_retries=0,
    ) as app:
        yield app


@pytest.fixture
def portal_codes(twilio, settings):
    """The portal's codes sent and checked by us (through the Twilio emulator, not Verify),
    with its rate limits fresh before and after the test."""
    from django.core.cache import cache

    settings.TWILIO_VERIFY_SERVICE_SID = ""
    cache.clear()
    yield
    cache.clear()
