"""Celery tasks of the incidents app; thin and idempotent."""

from celery import shared_task

from . import encryption, notify, reminders, scoping


@shared_task(acks_late=True)
def scope_incident(incident_id):
    """Write the scope's affected recordings (resumes where an interrupted run stopped)."""
    scoping.run_scoping(incident_id)


@shared_task(acks_late=True)
def test_encryption(incident_id, by_id=None):
    """Run the strong-encryption test over every affected recording (results overwritten)."""
    from django.contrib.auth import get_user_model

    by = get_user_model().objects.filter(pk=by_id).first() if by_id else None
    encryption.run_encryption_test(incident_id, by=by)


@shared_task(acks_late=True)
def send_notifications(incident_id, by_id=None):
    """Tell each affected person not protected; a person already told is not told again."""
    notify.send(incident_id, by_id=by_id)


@shared_task(acks_late=True)
def remind_deadlines():
    """Remind compliance officers of 速報/確報 deadlines (hourly from beat; each once)."""
    return reminders.remind_deadlines()
