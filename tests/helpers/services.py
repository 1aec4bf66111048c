"""Services a test needs beyond the database: Redis, and Celery workers of its own.

A missing service fails the test in CI and skips it on a developer's machine."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager

import pytest
import redis
from django.conf import settings
from django.db import connection

from .project import BASE_DIR, project_env

IN_CI = os.environ.get("CI", "").lower() == "true"
WAIT_SECONDS = 45


def require_service(name, problem):
    """A missing service fails the test in CI and skips it on a developer's machine."""
    message = f"{name} is not reachable: {problem}"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(condition, *, what, worker=None):
    """Wait up to WAIT_SECONDS for ``condition()``; on time-out fail with the worker's log."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            log = worker.log() if worker else ""
            pytest.fail(f"timed out waiting for {what}\n--- worker log ---\n{log}")
        time.sleep(0.1)


class PrivateRedis:
    """A Redis server of this test's own, which the test can stop and start again."""

    def __init__(self, directory):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.directory = directory
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            [
                shutil.which("redis-server"),
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
            finally:
                client.close()
        return self

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


def worker_database_url():
    """The database this test runs against, for the worker to share."""
    database = connection.settings_dict
    if database["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{database['NAME']}"
    return (
        f"postgres://{database['USER']}@{database['HOST'] or '127.0.0.1'}:"
        f"{database['PORT'] or 5432}/{database['NAME']}"
    )


class Worker:
    """A Celery worker process of this test's own, on the test's broker and database."""

    def __init__(self, *, broker, twilio, log_path, **variables):
        self.log_path = log_path
        self.variables = {
            "REDIS_URL": broker.url,
            "DATABASE_URL": worker_database_url(),
            "TWILIO_API_BASE_URL": twilio.url,
            "RECORDINGS_ROOT": settings.STORAGES["recordings"]["OPTIONS"]["location"],
            **variables,
        }
        self.process = None

    def start(self):
        log = self.log_path.open("a")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "contactcenter",
                "worker",
                "--pool=solo",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--loglevel=INFO",
            ],
            cwd=BASE_DIR,
            env=project_env(**self.variables),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        wait_for(lambda: "ready." in self.log(), what="the worker to start", worker=self)
        return self

    def log(self):
        return self.log_path.read_text() if self.log_path.exists() else ""

    def kill(self):
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


def wait_for_worker_sessions_to_end():
    """PostgreSQL ends a stopped worker's sessions a moment after it exits; the test database
    can only be dropped once they are gone."""
    if connection.vendor != "postgresql":
        return
    deadline = time.monotonic() + 10
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            if cursor.fetchone()[0] == 0:
                return
            time.sleep(0.1)


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
