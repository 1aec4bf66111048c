"""Celery tasks of the recording pipeline; each is idempotent, so a retry or a duplicate
publication from the outbox is harmless."""

import logging
import random

from celery import shared_task

from . import ingest, outbox, retention

logger = logging.getLogger(__name__)

FETCH_RETRIES = 6
BACKOFF_BASE_SECONDS = 30
BACKOFF_MAX_SECONDS = 30 * 60


def backoff(retries):
    """Exponential backoff with full jitter: 0..30 s, 0..60 s, 0..120 s, … capped at 30 min."""
    return random.uniform(0, min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2**retries))  # noqa: S311


@shared_task(bind=True, max_retries=FETCH_RETRIES, acks_late=True)
def fetch_recording(self, recording_id):
    """Fetch one recording from Twilio, encrypt and store it; retried on network errors."""
    try:
        ingest.fetch(recording_id)
    except ingest.FetchError as error:
        ingest.note_fetch_error(recording_id, error)
        if error.retryable and self.request.retries < self.max_retries:
            raise self.retry(exc=error, countdown=backoff(self.request.retries)) from error
        logger.error("Giving up fetching recording %s: %s", recording_id, error)
        ingest.mark_fetch_failed(recording_id, error)


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
    """Queue again the fetches whose task was lost (beat runs it every 15 minutes)."""
    return ingest.requeue_stalled_fetches()
