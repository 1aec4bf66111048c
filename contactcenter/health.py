"""Health of the parts the back office cannot work without: database, broker, storage.

The core owns the registry of checks (``CHECKS``) and runs them for ``/healthz``. An app
above the core adds its own checks in a ``health`` module that calls ``register``; such
modules are found the way ``admin`` modules are, so the core imports no app above it.
"""

import contextlib
import functools
import shutil
import uuid
from pathlib import Path

import redis
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, storages
from django.db import connection
from django.utils.module_loading import autodiscover_modules


def check_database():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"ok": True, "vendor": connection.vendor}


BROKER_TIMEOUT_SECONDS = 1


def check_broker():
    if not settings.REDIS_URL:
        return {"ok": True, "detail": "not configured: tasks run in-process"}
    # Bounded well below a container health check's own timeout: a frozen Redis (connection
    # accepted, nothing answered) is reported as down within a second, not waited on.
    client = redis.Redis.from_url(
        settings.REDIS_URL,
        socket_timeout=BROKER_TIMEOUT_SECONDS,
        socket_connect_timeout=BROKER_TIMEOUT_SECONDS,
    )
    try:
        client.ping()
    finally:
        client.close()
    return {"ok": True}


# Room kept free in the recordings storage: this many recordings the size of the largest
# stored in the last 7 days (and never less than RECORDINGS_MIN_FREE_MB).
HEADROOM_RECORDINGS = 20


def check_recording_storage(*, largest_recent=None):
    """Room for the next recordings, and a probe written, read back and deleted.

    ``largest_recent`` is the size in bytes of the largest recording stored lately (None when
    it cannot be known). Free space is read from the file system of a local storage and is
    "unknown" for any other. The probe is deleted whatever happens, a full disk included:
    a write that fails may still have created the file.
    """
    storage = storages["recordings"]
    result = {"ok": True}
    problem = _probe(storage)
    if problem:
        result.update(ok=False, error=problem)
    free = _free_bytes(storage)
    needed = max(
        settings.RECORDINGS_MIN_FREE_MB * 1024 * 1024, HEADROOM_RECORDINGS * (largest_recent or 0)
    )
    result.update(
        free_bytes="unknown" if free is None else free,
        needed_bytes=needed,
        largest_recent_bytes="unknown" if largest_recent is None else largest_recent,
    )
    if free is not None and free < needed:
        result.update(
            ok=False,
            reason=(
                f"{free} bytes free, {needed} needed: room for {HEADROOM_RECORDINGS} recordings "
                "the size of the largest of the last 7 days, and at least RECORDINGS_MIN_FREE_MB"
            ),
        )
    return result


def _probe(storage):
    """None if a small file goes through ``storage`` and back, else what went wrong."""
    name = f"healthz-{uuid.uuid4().hex}.probe"
    saved = None
    try:
        saved = storage.save(name, ContentFile(b"ok"))
        with storage.open(saved) as probe:
            if probe.read() != b"ok":
                return "read back different bytes"
    except Exception as error:  # a health check reports every failure, whatever it is
        # The reason without the path (the endpoint needs no login).
        reason = getattr(error, "strerror", None)
        return f"{type(error).__name__}: {reason}" if reason else type(error).__name__
    finally:
        for leftover in {name, saved} - {None}:
            # Nothing left to delete, or the storage is down: the probe reported it already.
            with contextlib.suppress(Exception):
                storage.delete(leftover)
    return None


def _free_bytes(storage):
    """Bytes available in a local storage's file system; None for any other storage."""
    if not isinstance(storage, FileSystemStorage):
        return None
    path = Path(storage.location)
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


CHECKS = {
    "database": check_database,
    "broker": check_broker,
}
# Checks whose failure is reported without taking the site out of service (/healthz stays
# 200, "degraded"): a load balancer must keep sending Twilio's webhooks here, so that
# callers are connected, even while the pipeline behind them needs a person.
ADVISORY = set()


def register(name, check, *, advisory=False):
    """Add ``check`` (a function returning ``{"ok": bool, …}``) to /healthz as ``name``."""
    CHECKS[name] = check
    if advisory:
        ADVISORY.add(name)
    else:
        ADVISORY.discard(name)


@functools.cache
def _discover():
    autodiscover_modules("health")


def run_checks():
    """Run every check; a failure is reported by its exception type, never raised."""
    _discover()
    results = {}
    for name, check in CHECKS.items():
        try:
            results[name] = check()
        except Exception as error:  # a health check reports every failure, whatever it is
            results[name] = {"ok": False, "error": type(error).__name__}
    return results


def overall(results):
    """``(status, HTTP status)`` of /healthz for the ``results`` of ``run_checks``."""
    failing = {name for name, result in results.items() if not result["ok"]}
    if failing - ADVISORY:
        return "unavailable", 503
    return ("degraded" if failing else "ok"), 200
