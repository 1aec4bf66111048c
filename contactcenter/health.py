"""Health of the parts the back office cannot work without: database, broker, storage."""

import uuid

import redis
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.db import connection


def check_database():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"ok": True, "vendor": connection.vendor}


def check_broker():
    if not settings.REDIS_URL:
        return {"ok": True, "detail": "not configured: tasks run in-process"}
    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    finally:
        client.close()
    return {"ok": True}


def check_recording_storage():
    """Write, read back and delete a probe file through the recordings storage API."""
    storage = storages["recordings"]
    name = storage.save(f"healthz/{uuid.uuid4().hex}.probe", ContentFile(b"ok"))
    try:
        with storage.open(name) as probe:
            if probe.read() != b"ok":
                raise OSError("read back different bytes")
    finally:
        storage.delete(name)
    return {"ok": True}


CHECKS = {
    "database": check_database,
    "broker": check_broker,
    "recording_storage": check_recording_storage,
}


def run_checks():
    """Run every check; a failure is reported by its exception type, never raised."""
    results = {}
    for name, check in CHECKS.items():
        try:
            results[name] = check()
        except Exception as error:  # a health check reports every failure, whatever it is
            results[name] = {"ok": False, "error": type(error).__name__}
    return results
