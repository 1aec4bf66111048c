"""Celery tasks of the privacy app; thin and idempotent."""

from celery import shared_task

from . import crossborder


@shared_task(acks_late=True)
def remind_cross_border_checks():
    """Remind staff of foreign recipients whose periodic check falls due (once each)."""
    return crossborder.remind_due_checks()
