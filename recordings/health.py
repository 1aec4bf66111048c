"""The recording pipeline's part of /healthz: room for the next recordings, and fetches that
stopped. Registered with the core's registry (``contactcenter.health.register``)."""

from datetime import timedelta

from django.db import DatabaseError
from django.db.models import Max
from django.utils import timezone

from contactcenter import health

from .models import Recording

Status = Recording.Status

# A recording still waiting to be fetched this long after Twilio finished it is stuck: the
# fetch and all its retries (backoff capped at 30 minutes) take far less.
WAITING_TOO_LONG = timedelta(hours=1)
# The largest recording is looked for among this many newest rows (a range of the primary
# key), so that /healthz costs the same on millions of recordings.
RECENT_ROWS = 50_000
RECENT_DAYS = 7


def largest_recent_recording():
    """Bytes of the largest recording stored in the last 7 days (0 if none, None when the
    database cannot tell)."""
    try:
        newest = Recording.objects.aggregate(newest=Max("pk"))["newest"]
        if newest is None:
            return 0
        largest = Recording.objects.filter(
            pk__gt=newest - RECENT_ROWS,
            stored_at__gte=timezone.now() - timedelta(days=RECENT_DAYS),
        ).aggregate(largest=Max("ciphertext_size"))["largest"]
    except DatabaseError:  # the database check reports it; the storage is still checked
        return None
    return largest or 0


def check_recording_storage():
    return health.check_recording_storage(largest_recent=largest_recent_recording())


def check_pipeline():
    """Recordings whose fetch stopped: 取得失敗, or waiting longer than WAITING_TOO_LONG; and
    the newest error the pipeline wrote on a recording still to be fetched."""
    now = timezone.now()
    pending = Recording.objects.filter(status__in=[Status.COMPLETED, Status.FETCH_FAILED])
    failed = pending.filter(status=Status.FETCH_FAILED).count()
    waiting = pending.filter(status=Status.COMPLETED, created_at__lt=now - WAITING_TOO_LONG).count()
    newest = pending.exclude(last_error="").order_by("-updated_at").first()
    result = {"ok": not (failed or waiting), "fetch_failed": failed, "waiting_too_long": waiting}
    if newest is not None:
        result["newest_error"] = {
            "recording": newest.sid,
            "status": newest.status,
            "at": newest.updated_at.isoformat(),
            "error": newest.last_error[:300],
        }
    return result


health.register("recording_storage", check_recording_storage)
# A fetch that stopped needs a person, not a restart: reported, but /healthz stays 200.
health.register("pipeline", check_pipeline, advisory=True)
