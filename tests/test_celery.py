"""Tasks reach a real Celery worker through Redis; without Redis they run in-process."""

import json
import subprocess
import sys
import uuid

import pytest
from django.conf import settings

from .helpers.project import BASE_DIR, project_env, run_project

pytestmark = pytest.mark.integration

SEND_PING = (
    "import json, os, django; django.setup();"
    "from contactcenter.tasks import ping;"
    "result = ping.apply_async(queue=os.environ.get('QUEUE', 'celery')).get(timeout=45);"
    "print(json.dumps({**result, 'sender_pid': os.getpid()}))"
)


def last_json_line(output):
    return json.loads(output.strip().splitlines()[-1])


def test_a_task_sent_through_redis_runs_in_a_separate_worker_process(redis_url, tmp_path):
    # The worker uses the same database as this test run: PostgreSQL in CI's second pass.
    database_url = settings.DATABASES["default"]["ENGINE"].endswith("postgresql") and (
        project_env().get("DATABASE_URL") or None
    )
    variables = {
        "REDIS_URL": redis_url,
        "DATABASE_URL": database_url or f"sqlite:///{tmp_path}/worker.sqlite3",
    }
    # A queue of its own, so no other worker on this Redis can take the task.
    queue = f"test-{uuid.uuid4().hex}"
    log = (tmp_path / "worker.log").open("w+")
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "contactcenter",
            "worker",
            "--pool=solo",
            "--queues",
            queue,
            "--hostname",
            f"{queue}@%h",
            "--without-gossip",
            "--without-mingle",
            "--loglevel=INFO",
        ],
        cwd=BASE_DIR,
        env=project_env(**variables),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        sender = run_project(["-c", SEND_PING], QUEUE=queue, **variables)
        log.seek(0)
        assert sender.returncode == 0, f"{sender.stderr}\n--- worker log ---\n{log.read()}"
        result = last_json_line(sender.stdout)
    finally:
        worker.terminate()
        worker.wait(timeout=20)
        log.close()

    assert result["pong"] is True
    assert result["pid"] == worker.pid
    assert result["pid"] != result["sender_pid"]
    expected_vendor = "postgresql" if database_url else "sqlite"
    assert result["database"] == expected_vendor
    assert "Task contactcenter.tasks.ping[" in (tmp_path / "worker.log").read_text()


def test_without_redis_a_task_runs_in_the_process_that_sends_it(tmp_path):
    result = run_project(["-c", SEND_PING], DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite3")
    assert result.returncode == 0, result.stderr
    outcome = last_json_line(result.stdout)
    assert outcome["pong"] is True
    assert outcome["pid"] == outcome["sender_pid"]
