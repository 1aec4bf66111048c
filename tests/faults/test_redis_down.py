"""With Redis refusing connections or frozen, webhooks do not wait on it, and nothing is lost.

A gunicorn of the app with production settings, a PostgreSQL cluster and a Redis of the
test's own; the Redis is first not running (connections refused), then frozen (SIGSTOP: it
accepts connections and never answers), then thawed."""

import os
import secrets
import shutil
import signal
import time

import pytest
import redis

from tests.helpers.appserver import AppServer, migrate
from tests.helpers.postgres import PrivatePostgres
from tests.helpers.project import production_variables, run_project
from tests.helpers.services import PrivateRedis, free_port, require_service

pytestmark = pytest.mark.faults

CALLS_PER_PHASE = 5
LIMIT_SECONDS = 1.0


@pytest.fixture
def cluster():
    with PrivatePostgres() as cluster:
        migrate(cluster.url)
        yield cluster


@pytest.fixture
def broker(tmp_path):
    if not shutil.which("redis-server"):
        require_service("Redis", "redis-server is not installed")
    broker = PrivateRedis(tmp_path)
    yield broker
    if broker.process:
        os.kill(broker.process.pid, signal.SIGCONT)
    broker.stop()


def params(call_sid, **extra):
    return {
        "AccountSid": "AC" + "a" * 32,
        "CallSid": call_sid,
        "From": "+81312345678",
        "To": "+815012345678",
        "Direction": "inbound",
        **extra,
    }


def one_call(app):
    """A call's webhooks, each timed: incoming, consent, recording completed, call completed."""
    sid = "CA" + secrets.token_hex(16)
    webhooks = [
        ("/twilio/voice/incoming", params(sid, CallStatus="ringing")),
        (
            "/twilio/voice/consent?notice=1&lang=ja&attempt=1",
            params(sid, CallStatus="in-progress", Digits="1"),
        ),
        (
            "/twilio/recordings/status",
            params(
                sid,
                RecordingSid="RE" + secrets.token_hex(16),
                RecordingStatus="completed",
                RecordingUrl=f"https://api.twilio.com/2010-04-01/Accounts/AC/Recordings/{sid}",
                RecordingDuration="30",
                RecordingChannels="2",
                RecordingSource="DialVerb",
            ),
        ),
        (
            "/twilio/voice/status",
            params(sid, CallStatus="completed", SequenceNumber="2", CallDuration="30"),
        ),
    ]
    times = {}
    for path, form in webhooks:
        started = time.monotonic()
        response = app.twilio_post(path, form, timeout=30)
        times[path.split("?")[0]] = time.monotonic() - started
        assert response.status_code == 200, (path, response.text)
    return times


def test_webhooks_answer_within_a_second_and_the_outbox_delivers_after(cluster, broker, tmp_path):
    """GIVEN Redis refusing, then frozen WHEN calls come in and their recordings complete THEN
    every webhook answers in under a second; once Redis is back the relay publishes every
    queued fetch."""
    broker.port = free_port()  # nothing listens there yet: connections are refused
    broker.url = f"redis://127.0.0.1:{broker.port}/0"
    slowest = {}
    for phase in ("refused", "frozen"):
        if phase == "frozen":
            broker.start()
            os.kill(broker.process.pid, signal.SIGSTOP)
        # A fresh app per phase: one that saw Redis refuse has stopped trying for a while.
        with AppServer(
            database_url=cluster.url, log_path=tmp_path / f"app-{phase}.log", REDIS_URL=broker.url
        ) as app:
            if phase == "frozen":
                started = time.monotonic()
                health = app.http.get(app.url + "/healthz", headers=app.headers(), timeout=10)
                slowest[("frozen", "/healthz")] = time.monotonic() - started
                assert health.json()["checks"]["broker"]["ok"] is False
            for _ in range(CALLS_PER_PHASE):
                for path, seconds in one_call(app).items():
                    slowest[(phase, path)] = max(slowest.get((phase, path), 0), seconds)
    os.kill(broker.process.pid, signal.SIGCONT)

    for (phase, path), seconds in sorted(slowest.items()):
        print(f"Redis {phase}: slowest {path} {seconds * 1000:.0f} ms")
    health = slowest.pop(("frozen", "/healthz"))
    assert max(slowest.values()) < LIMIT_SECONDS, slowest
    assert health < 2 * LIMIT_SECONDS  # its broker check gives up after one second

    pending = cluster.psql(
        "SELECT count(*) FROM recordings_outboxmessage WHERE published_at IS NULL"
    )
    assert int(pending) == 2 * CALLS_PER_PHASE
    relay = run_project(
        ["manage.py", "relay_outbox"],
        **production_variables(DATABASE_URL=cluster.url, REDIS_URL=broker.url),
    )
    assert relay.returncode == 0, relay.stdout + relay.stderr
    queued = redis.Redis.from_url(broker.url).llen("celery")
    print(f"after Redis is back: {queued} of {2 * CALLS_PER_PHASE} fetches queued")
    assert queued == 2 * CALLS_PER_PHASE
    assert (
        cluster.psql("SELECT count(*) FROM recordings_outboxmessage WHERE published_at IS NULL")
        == "0"
    )
