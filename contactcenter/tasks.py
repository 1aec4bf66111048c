import os
import socket

from celery import shared_task
from django.db import connection


@shared_task(ignore_result=False)
def ping():
    """Answer from whichever process runs the task, after touching the database.

    Used by operators to check that workers are consuming, and by the integration test
    that proves a task travels through the broker to a separate worker process.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        (one,) = cursor.fetchone()
    return {
        "pong": one == 1,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "database": connection.vendor,
    }


@shared_task
def resume_expired_card_pauses():
    """Resume the recordings whose pause for a card number has run out (beat, every 15 s)."""
    from .services import resume_expired_card_pauses as resume

    return resume()
