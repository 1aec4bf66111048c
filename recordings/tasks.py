"""Celery tasks of the recording pipeline; each is idempotent, so a retry or a duplicate
publication from the outbox is harmless."""

import logging
import random

from celery import shared_task
from django.db import InterfaceError, OperationalError

from . import ingest, outbox, provision, reconcile, retention

logger = logging.getLogger(__name__)

FETCH_RETRIES = 6
DELETE_RETRIES = 8
BACKOFF_BASE_SECONDS = 30
BACKOFF_MAX_SECONDS = 30 * 60


def backoff(retries):
    """Exponential backoff with full jitter: 0..30 s, 0..60 s, 0..120 s, … capped at 30 min."""
    return random.uniform(0, min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2**retries))  # noqa: S311


@shared_task(bind=True, max_retries=FETCH_RETRIES, acks_late=True)
def fetch_recording(self, recording_id):
    """Fetch one recording from Twilio, encrypt and store it; retried on network and
    database errors, and a few times on media Twilio does not serve yet (401/404)."""
    try:
        ingest.fetch(recording_id)
    except ingest.FetchError as error:
        ingest.note_fetch_error(recording_id, error)
        allowed = self.max_retries if error.retries is None else error.retries
        if error.retryable and self.request.retries < min(allowed, self.max_retries):
            raise self.retry(exc=error, countdown=backoff(self.request.retries)) from error
        logger.error("Giving up fetching recording %s: %s", recording_id, error)
        ingest.mark_fetch_failed(recording_id, error)
    except (OperationalError, InterfaceError) as error:
        # The database went away mid-fetch; the fetch gave its lease back if it could.
        if self.request.retries < self.max_retries:
            raise self.retry(exc=error, countdown=backoff(self.request.retries)) from error
        # Still waiting to be fetched: queued again once its lease has run out.
        logger.error("Giving up fetching recording %s for now: %s", recording_id, error)
    except Exception as error:
        # A fault of ours (bad data, a bug): retrying will not help. The recording says so
        # where people look (取得失敗 in the admin, /healthz's pipeline check), not only the log;
        # Twilio keeps its copy until someone fetches it again.
        logger.exception("Fetching recording %s failed unexpectedly", recording_id)
        problem = f"{type(error).__name__}: {error}"
        ingest.note_fetch_error(recording_id, problem)
        try:
            ingest.mark_fetch_failed(recording_id, problem)
        except Exception:  # the same fault may stop this too; the error is on the row already
            logger.exception("Recording %s could not be marked 取得失敗", recording_id)


@shared_task(bind=True, max_retries=DELETE_RETRIES, acks_late=True)
def delete_twilio_copy(self, recording_id):
    """Delete Twilio's copy of a recording that is ours no longer; retried with backoff (the
    hourly purge run retries what is left after the last)."""
    if ingest.delete_twilio_copy_of(recording_id):
        return
    if self.request.retries < self.max_retries:
        raise self.retry(countdown=backoff(self.request.retries))
    logger.error("Twilio's copy of recording %s is not deleted yet", recording_id)


@shared_task
def relay_outbox():
    """Publish what the outbox holds (beat runs it every minute)."""
    return outbox.publish_pending(quietly=True)


@shared_task
def purge_recordings(recording_ids=None):
    """Purge recordings past retention and not held (beat runs it every hour; a withdrawal
    of consent queues it for the recordings it covered)."""
    return retention.purge_due(recording_ids=recording_ids)


@shared_task
def requeue_stalled_fetches():
    """Queue again the fetches whose task was lost or whose worker died (beat runs it every
    minute)."""
    return ingest.requeue_stalled_fetches()


@shared_task
def reconcile_twilio():
    """Bring recordings and calls in line with Twilio's lists (beat runs it every 15 minutes);
    a failed run is recorded, never raised."""
    return reconcile.reconcile().pk


@shared_task
def delete_expired_provision_records():
    """Delete the third-party provision records whose retention ended (beat runs it daily);
    the deletion is audited."""
    return provision.delete_expired()
