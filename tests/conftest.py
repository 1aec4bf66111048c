import os
import subprocess
import sys
from contextlib import contextmanager
from datetime import timedelta

import pytest
import redis
from django.conf import settings
from django.utils import timezone

from contactcenter.roles import COMPLIANCE, OPERATOR, SUPERVISOR

from .factories import OperatorFactory, UserFactory

IN_CI = os.environ.get("CI", "").lower() == "true"


def pytest_report_header(config):
    database = settings.DATABASES["default"]
    return [
        f"database: {database['ENGINE'].rsplit('.', 1)[-1]} ({database['NAME']})",
        f"celery broker: {settings.REDIS_URL or 'none (tasks run in-process)'}",
    ]


def require_service(name, problem):
    """A missing service fails the test in CI and skips it on a developer's machine."""
    message = f"{name} is not reachable: {problem}"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


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


def restore_roles():
    """Put back the role groups the data migrations created.

    Tests that need committed data (a live server, a worker) empty every table afterwards,
    including the groups; this re-runs the project's own ``*_roles`` migrations.
    """
    import importlib
    import pkgutil

    from django.apps import apps

    for app_label in (
        "contactcenter",
        "privacy",
        "consent",
        "recordings",
        "audit",
        "training",
        "portal",
    ):
        package = importlib.import_module(f"{app_label}.migrations")
        for module in sorted(m.name for m in pkgutil.iter_modules(package.__path__)):
            if module.endswith("_roles"):
                importlib.import_module(f"{app_label}.migrations.{module}").create_roles(apps, None)


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
def supervisor(db):
    return UserFactory(username="supervisor", roles=[SUPERVISOR])


@pytest.fixture
def compliance_officer(db):
    return UserFactory(username="compliance", roles=[COMPLIANCE])


def acknowledged_operator(username):
    """An operator who acknowledged a month ago that their calls are recorded."""
    from consent.services import acknowledge_recording

    operator = OperatorFactory(user=UserFactory(username=username, roles=[OPERATOR]))
    acknowledge_recording(operator=operator, by=None, at=timezone.now() - timedelta(days=30))
    operator.refresh_from_db()
    return operator


@pytest.fixture
def operator(db):
    return acknowledged_operator("operator")


@pytest.fixture
def other_operator(db):
    return acknowledged_operator("other-operator")


# --- running the project in a separate process, as a deployment would ---------------------

BASE_DIR = settings.BASE_DIR
SETTINGS_VARIABLES_PREFIXES = (
    "DEBUG",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "PUBLIC_BASE_URL",
    "DATABASE",
    "REDIS_URL",
    "TWILIO_",
    "RECORDINGS_",
    "STATIC_ROOT",
    "BEHIND_TLS_PROXY",
    "SECURE_",
    "EMAIL_URL",
    "DEFAULT_FROM_EMAIL",
    "LOG_LEVEL",
    "DJANGO_SETTINGS_MODULE",
    "DJANGO_ALLOW_ASYNC_UNSAFE",
)


def project_env(**variables):
    """This process's environment without any project setting, plus ``variables``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(SETTINGS_VARIABLES_PREFIXES)}
    env["DJANGO_SETTINGS_MODULE"] = "contactcenter.settings"
    env.update({k: str(v) for k, v in variables.items()})
    return env


def run_project(args, *, timeout=60, **variables):
    """Run ``python <args>`` in the project directory with only ``variables`` configured."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=BASE_DIR,
        env=project_env(**variables),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def production_variables(**overrides):
    """A complete, valid set of production settings (no real secrets)."""
    values = {
        "DEBUG": "false",
        "SECRET_KEY": "s" * 20 + "-production-secret-key-for-tests-" + "k" * 10,
        "ALLOWED_HOSTS": "callcenter.example.jp",
        "PUBLIC_BASE_URL": "https://callcenter.example.jp",
        "TWILIO_ACCOUNT_SID": "AC" + "a" * 32,
        "TWILIO_AUTH_TOKEN": "production-auth-token",
        "RECORDINGS_MASTER_KEYS": "k2026:" + "A" * 43 + "=",
    }
    values.update(overrides)
    return values


# --- a real browser ------------------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


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


def log_in(page, username, password):
    page.goto("/admin/login/")
    page.get_by_label("ユーザー名").fill(username)
    page.get_by_label("パスワード").fill(password)
    page.get_by_role("button", name="ログイン").click()


# --- Twilio: the local emulator and signed webhooks ----------------------------------------


@pytest.fixture
def twilio(settings):
    """The local Twilio emulator over HTTP; the app's twilio client is pointed at it."""
    from twilio_emulator import Emulator

    with Emulator(
        account_sid=settings.TWILIO_ACCOUNT_SID, auth_token=settings.TWILIO_AUTH_TOKEN
    ) as emulator:
        settings.TWILIO_API_BASE_URL = emulator.url
        yield emulator


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


def twilio_post(client, path, params, *, query="", signature=None, token=None):
    """POST as Twilio does: form parameters signed over PUBLIC_BASE_URL + path."""
    from twilio.request_validator import RequestValidator

    url = path + (f"?{query}" if query else "")
    if signature is None:
        signature = RequestValidator(settings.TWILIO_AUTH_TOKEN).compute_signature(
            settings.PUBLIC_BASE_URL + url, params
        )
    headers = {"HTTP_X_TWILIO_SIGNATURE": signature}
    if token:
        headers["HTTP_I_TWILIO_IDEMPOTENCY_TOKEN"] = token
    return client.post(url, params, **headers)


# --- Celery: which broker the tests' own process publishes to ------------------------------


@contextmanager
def celery_config(**options):
    """Run with the Celery app of this process reconfigured (broker, eager mode…)."""
    from contactcenter.celery import app

    saved = {name: app.conf[name] for name in options}
    app.conf.update(options)
    _drop_broker_connections(app)
    try:
        yield app
    finally:
        app.conf.update(saved)
        _drop_broker_connections(app)


def _drop_broker_connections(app):
    from kombu import pools

    pools.reset()  # closes every pooled connection and forgets the pools
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def tasks_in_process():
    """Tasks run in this process when published, whatever REDIS_URL says."""
    with celery_config(task_always_eager=True, task_eager_propagates=True) as app:
        yield app


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
