"""The transactional outbox: tasks written with the change that needs them, published later.

``enqueue`` adds a message in the caller's transaction. Once it commits, that one message is
published at once, within a short bound (``REQUEST_PUBLISH_TIMEOUT``); the relay
(``publish_pending``: every minute from beat, and ``manage.py relay_outbox``) publishes
whatever is still waiting. While Redis is down the messages wait here, and nothing is lost;
publishing one twice is harmless because every task it names is idempotent.

A webhook must never wait on Redis (Twilio gives up after 15 seconds, and at the start of a
call the caller is waiting): kombu's defaults retry a refused connection for about six
seconds and wait for ever on a frozen Redis. So publishing uses a connection of its own with
short socket timeouts and no retries, and after one failure a process leaves publishing to
the relay for ``PAUSE_AFTER_FAILURE`` seconds instead of trying again on every request.
"""

import logging
import time

from django.db import transaction
from django.utils import timezone

from contactcenter.celery import app as celery_app

from .models import OutboxMessage

logger = logging.getLogger(__name__)

BATCH = 100
# Seconds one publication may take on the commit of a request (an LPUSH takes a millisecond)
# and in the relay, which nobody waits on.
REQUEST_PUBLISH_TIMEOUT = 0.25
RELAY_PUBLISH_TIMEOUT = 2.0
# After a failed publication on commit, this process leaves publishing to the relay.
PAUSE_AFTER_FAILURE = 30.0

_paused_until = 0.0


def enqueue(task, **kwargs):
    """Write a message for ``task`` in the current transaction; publish it once committed."""
    message = OutboxMessage.objects.create(task=task, kwargs=kwargs)
    transaction.on_commit(lambda: publish_committed(message.pk))
    return message


def resume_publishing():
    """Publish on commit again at once, without waiting out a pause after a failure."""
    global _paused_until
    _paused_until = 0.0


def publish_committed(message_id):
    """Publish one just-committed message, quickly or not at all (the relay will)."""
    global _paused_until
    if time.monotonic() < _paused_until:
        return 0
    try:
        return publish_pending(only=message_id, timeout=REQUEST_PUBLISH_TIMEOUT)
    except Exception as error:
        logger.warning("Outbox: message %s left to the relay: %s", message_id, error)
        # Without a broker (tasks run in-process) the failure was the task's, not Redis's.
        if not celery_app.conf.task_always_eager:
            _paused_until = time.monotonic() + PAUSE_AFTER_FAILURE
        return 0


def publish_pending(*, limit=BATCH, quietly=False, only=None, timeout=RELAY_PUBLISH_TIMEOUT):
    """Publish up to ``limit`` pending messages (or just message ``only``); return how many
    were published. Each publication gives up after about ``timeout`` seconds.

    Rows are claimed under ``SKIP LOCKED`` and marked published before Celery is called, so
    two relays never publish one message at once; a failed publication is put back.
    """
    published = 0
    pending = OutboxMessage.objects.filter(published_at__isnull=True)
    if only is not None:
        pending = pending.filter(pk=only)
    with _broker_connection(timeout) as connection:
        while published < limit:
            with transaction.atomic():
                message = pending.select_for_update(skip_locked=True).order_by("pk").first()
                if message is None:
                    break
                OutboxMessage.objects.filter(pk=message.pk).update(
                    published_at=timezone.now(), attempts=message.attempts + 1
                )
            try:
                celery_app.tasks[message.task].apply_async(
                    kwargs=message.kwargs, retry=False, connection=connection
                )
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


def _broker_connection(timeout):
    """A broker connection that fails within about ``timeout`` seconds instead of retrying."""
    return celery_app.connection_for_write(
        transport_options={
            "socket_connect_timeout": timeout,
            "socket_timeout": timeout,
            "max_retries": 0,
        }
    )
