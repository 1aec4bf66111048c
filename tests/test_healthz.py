"""/healthz reports database, broker and recording storage; 503 when one of them fails."""

import json

import pytest
from django.urls import reverse

from .helpers.project import run_project

pytestmark = pytest.mark.django_db


@pytest.mark.integration
def test_healthy_when_everything_works(client, settings, redis_url):
    settings.REDIS_URL = redis_url
    response = client.get(reverse("healthz"))
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "broker", "recording_storage", "pipeline"}
    assert all(check["ok"] for check in body["checks"].values())
    assert response["Cache-Control"].startswith("max-age=0")


def test_without_a_broker_the_in_process_mode_is_reported_as_healthy(client, settings):
    settings.REDIS_URL = ""
    body = client.get(reverse("healthz")).json()
    assert body["checks"]["broker"] == {
        "ok": True,
        "detail": "not configured: tasks run in-process",
    }


def test_an_unreachable_broker_gives_503(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = client.get(reverse("healthz"))
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["broker"]["ok"] is False
    assert body["checks"]["broker"]["error"] == "ConnectionError"
    assert body["checks"]["database"]["ok"] is True


def test_unwritable_recording_storage_gives_503(client, settings, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    settings.STORAGES = {
        **settings.STORAGES,
        "recordings": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(blocker / "recordings")},
        },
    }
    response = client.get(reverse("healthz"))
    assert response.status_code == 503
    assert response.json()["checks"]["recording_storage"]["ok"] is False


def test_the_storage_probe_leaves_nothing_behind(client, settings, tmp_path):
    client.get(reverse("healthz"))
    location = settings.STORAGES["recordings"]["OPTIONS"]["location"]
    leftovers = [p for p in (tmp_path / location).rglob("*") if p.is_file()]
    assert leftovers == []


@pytest.mark.integration
def test_an_unreachable_database_gives_503(tmp_path):
    script = (
        "import json, django; django.setup();"
        "from django.test import Client;"
        "r = Client(HTTP_HOST='127.0.0.1').get('/healthz');"
        "print(json.dumps({'status': r.status_code, 'body': r.json()}))"
    )
    result = run_project(
        ["-c", script],
        DATABASE_URL=f"sqlite:///{tmp_path}/missing-directory/db.sqlite3",
        RECORDINGS_ROOT=str(tmp_path / "recordings"),
    )
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["status"] == 503
    assert outcome["body"]["checks"]["database"] == {"ok": False, "error": "OperationalError"}
    assert outcome["body"]["checks"]["recording_storage"]["ok"] is True


def test_only_get_is_allowed(client):
    assert client.post(reverse("healthz")).status_code == 405
