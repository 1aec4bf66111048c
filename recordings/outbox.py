"""The transactional outbox: tasks written with the change that needs them, published later.

``enqueue`` adds a message in the caller's transaction. ``publish_pending`` hands pending
messages to Celery; it runs right after the transaction commits, every minute from beat, and
from ``manage.py relay_outbox``. While Redis is down the messages wait here, and nothing is
lost; publishing one twice is harmless because every task it names is idempotent.
"""

import logging

from django.db import transaction
from django.utils import timezone

from contactcenter.celery import app as celery_app

from .models import OutboxMessage

logger = logging.getLogger(__name__)

BATCH = 100


def enqueue(task, **kwargs):
    """Write a message for ``task`` in the current transaction; publish it once committed."""
    message = OutboxMessage.objects.create(task=task, kwargs=kwargs)
    transaction.on_commit(lambda: publish_pending(quietly=True))
    return message


def publish_pending(*, limit=BATCH, quietly=False):
    """Publish up to ``limit`` pending messages; return how many were published.

    Rows are claimed under ``SKIP LOCKED`` and marked published before Celery is called, so
    two relays never publish one message at once; a failed publication is put back.
    """
    published = 0
    while published < limit:
        with transaction.atomic():
            message = (
                OutboxMessage.objects.select_for_update(skip_locked=True)
                .filter(published_at__isnull=True)
                .order_by("pk")
                .first()
            )
            if message is None:
                break
            OutboxMessage.objects.filter(pk=message.pk).update(
                published_at=timezone.now(), attempts=message.attempts + 1
            )
        try:
            celery_app.tasks[message.task].apply_async(kwargs=message.kwargs, retry=False)
        except Exception as error:
            OutboxMessage.objects.filter(pk=message.pk).update(
                published_at=None, last_error=f"{type(error).__name__}: {error}"[:2000]
            )
            if not quietly:
                raise
            logger.warning("Outbox: could not publish %s yet: %s", message, error)
            break
        published += 1
    return published
