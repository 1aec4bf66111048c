"""/healthz measures the recordings storage against what it must hold: free space against the
largest recording of the last 7 days (on a real tmpfs of a few hundred kilobytes), a full disk
is 503 with its reason and the probe leaves no file behind; a fetch that stopped is shown on
/healthz and on the recording in the admin."""

import errno
import os
import shutil
import subprocess
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from recordings.models import Recording
from recordings.tasks import FETCH_RETRIES, fetch_recording

from .factories import consented_call, stored_recording
from .helpers.recordings import completed
from .helpers.services import require_service

pytestmark = pytest.mark.django_db

KIB = 1024


@pytest.fixture
def small_disk(settings, tmp_path):
    """Mount a tmpfs of ``size`` bytes as the recordings directory; unmounted afterwards."""
    mounted = []

    def mount(size):
        target = tmp_path / f"disk-{len(mounted)}"
        target.mkdir()
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(target)],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            require_service("a tmpfs mount (run as root)", result.stderr.strip())
        mounted.append(target)
        settings.STORAGES = {
            **settings.STORAGES,
            "recordings": {
                **settings.STORAGES["recordings"],
                "OPTIONS": {**settings.STORAGES["recordings"]["OPTIONS"], "location": str(target)},
            },
        }
        return target

    yield mount
    for target in mounted:
        subprocess.run(["umount", str(target)], check=True)


def fill(directory):
    """Write into ``directory`` until its file system is full; return the file written."""
    filler = directory / "filler"
    with open(filler, "wb", buffering=0) as out:
        try:
            while True:
                out.write(b"\0" * 4 * KIB)
        except OSError as error:
            assert error.errno == errno.ENOSPC
    return filler


def storage_check(client):
    response = client.get(reverse("healthz"))
    return response, response.json()["checks"]["recording_storage"]


def test_free_space_is_reported_against_the_largest_recent_recording(
    client, settings, small_disk, notice, operator
):
    """GIVEN a 1 MiB disk for recordings and no floor
    WHEN a 10 KiB recording is stored, then an 80 KiB one
    THEN /healthz reports the disk's free space; it is 200 while room is left for 20
    recordings the size of the largest, and 503 naming the shortfall once there is not."""
    settings.RECORDINGS_MIN_FREE_MB = 0
    disk = small_disk(1024 * KIB)
    small = stored_recording(operator, audio=os.urandom(10 * KIB))

    response, storage = storage_check(client)

    assert response.status_code == 200, storage
    assert storage["ok"] is True
    assert storage["free_bytes"] == shutil.disk_usage(disk).free
    assert storage["largest_recent_bytes"] == small.ciphertext_size
    assert storage["needed_bytes"] == 20 * small.ciphertext_size

    large = stored_recording(operator, audio=os.urandom(80 * KIB))
    response, storage = storage_check(client)

    assert response.status_code == 503
    assert storage["ok"] is False
    assert storage["free_bytes"] == shutil.disk_usage(disk).free
    assert storage["needed_bytes"] == 20 * large.ciphertext_size > storage["free_bytes"]
    assert (
        f"{storage['free_bytes']} bytes free, {storage['needed_bytes']} needed"
        in (storage["reason"])
    )


def test_the_floor_applies_when_no_recording_was_stored_lately(client, settings, small_disk):
    settings.RECORDINGS_MIN_FREE_MB = 1
    small_disk(512 * KIB)

    response, storage = storage_check(client)

    assert response.status_code == 503
    assert storage["largest_recent_bytes"] == 0
    assert storage["needed_bytes"] == 1024 * KIB
    assert "needed" in storage["reason"]


def test_a_full_disk_gives_503_with_its_reason_and_the_probe_leaves_nothing(client, small_disk):
    """GIVEN a 256 KiB disk for recordings, filled to the last byte
    WHEN /healthz runs its probe, three times
    THEN it answers 503 saying there is no space, and the disk holds only the filler: each
    probe's file, created before its write failed, is gone."""
    disk = small_disk(256 * KIB)
    filler = fill(disk)

    for _ in range(3):
        response, storage = storage_check(client)

    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert storage["ok"] is False
    assert storage["error"] == "OSError: No space left on device"
    assert storage["free_bytes"] == 0
    assert "0 bytes free" in storage["reason"]
    assert list(disk.rglob("*")) == [filler]


def test_a_remote_storage_reports_free_space_as_unknown(client, settings):
    settings.STORAGES = {
        **settings.STORAGES,
        "recordings": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    }

    response, storage = storage_check(client)

    assert response.status_code == 200
    assert storage["ok"] is True
    assert storage["free_bytes"] == "unknown"


# --- the pipeline --------------------------------------------------------------------------


@pytest.fixture
def failed_fetch(client, twilio, notice, operator, tasks_in_process, monkeypatch):
    """A recording whose fetch gave up: Twilio answered 503 to every attempt."""
    from recordings import tasks

    monkeypatch.setattr(tasks, "BACKOFF_BASE_SECONDS", 0)
    recording = completed(client, twilio, consented_call(operator), fail_times=FETCH_RETRIES + 1)
    tasks_in_process.conf.task_eager_propagates = False  # a retry is not a failure
    fetch_recording.delay(recording.pk)
    recording.refresh_from_db()
    assert recording.status == Recording.Status.FETCH_FAILED
    return recording


def test_a_fetch_that_stopped_is_shown_on_healthz_without_taking_the_site_down(
    client, failed_fetch
):
    """GIVEN a recording in 取得失敗
    WHEN /healthz is asked
    THEN it answers 200 "degraded" (webhooks must still be served), and its pipeline check
    counts the recording and shows its error."""
    response = client.get(reverse("healthz"))

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    pipeline = body["checks"]["pipeline"]
    assert pipeline["ok"] is False
    assert pipeline["fetch_failed"] == 1
    assert pipeline["newest_error"]["recording"] == failed_fetch.sid
    assert pipeline["newest_error"]["status"] == "fetch_failed"
    assert pipeline["newest_error"]["error"] == failed_fetch.last_error[:300]
    assert "503" in pipeline["newest_error"]["error"]


def test_a_recording_waiting_too_long_is_shown_on_healthz(client, twilio, notice, operator):
    recording = completed(client, twilio, consented_call(operator))
    Recording.objects.filter(pk=recording.pk).update(created_at=timezone.now() - timedelta(hours=2))

    body = client.get(reverse("healthz")).json()

    assert body["status"] == "degraded"
    assert body["checks"]["pipeline"]["waiting_too_long"] == 1
    assert body["checks"]["pipeline"]["fetch_failed"] == 0


def test_a_fetch_that_stopped_is_shown_in_the_recordings_admin(
    client, supervisor, twilio, operator, failed_fetch
):
    """GIVEN a recording in 取得失敗 and one waiting without error
    THEN the admin's "pipeline error" filter lists only the failed one with its error, and its
    page shows the error at the top."""
    waiting = completed(client, twilio, consented_call(operator))
    client.force_login(supervisor)
    changelist = reverse("admin:recordings_recording_changelist")

    listed = client.get(changelist, {"error": "fetch"})

    assert listed.status_code == 200
    assert failed_fetch.sid in listed.text
    assert waiting.sid not in listed.text
    assert "処理エラー" in listed.text

    page = client.get(reverse("admin:recordings_recording_change", args=[failed_fetch.pk]))

    assert page.status_code == 200
    assert "この録音の処理は次のエラーで止まっています" in page.text
    assert 'class="errornote"' in page.text
    assert failed_fetch.last_error.splitlines()[0][:60] in page.text
