"""Reminder emails to the compliance officers as a report's deadline approaches, and when it
has passed: each (incident, report, day) once.

A reminder is claimed by inserting its ``IncidentReminder`` row (unique), so two runs at once
send one email; when the email cannot be sent the row is deleted again, and the next hourly
run tries again.
"""

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from contactcenter.roles import COMPLIANCE, staff_emails

from .clocks import clocks, reportability
from .models import Incident, IncidentReminder

logger = logging.getLogger(__name__)
OVERDUE = -1


def _claim(incident, report, days_before):
    try:
        with transaction.atomic():
            return IncidentReminder.objects.create(
                incident=incident, report=report, days_before=days_before
            )
    except IntegrityError:
        return None


def remind_deadlines(*, now=None):
    """Email the compliance officers about each open report due in INCIDENT_REMIND_DAYS_BEFORE
    days or overdue; return the number of emails sent. Open incidents are few."""
    now = now or timezone.now()
    sent = 0
    for incident in Incident.objects.filter(status=Incident.Status.OPEN):
        if not reportability(incident).clocks_run:
            continue
        for clock in clocks(incident, now=now):
            if not clock.open:
                continue
            if clock.overdue:
                days_before = OVERDUE
            elif clock.days_left in settings.INCIDENT_REMIND_DAYS_BEFORE:
                days_before = clock.days_left
            else:
                continue
            recipients = staff_emails(COMPLIANCE)
            if not recipients:
                continue
            reminder = _claim(incident, clock.report, days_before)
            if reminder is None:
                continue
            try:
                send_mail(*_email(incident, clock), settings.DEFAULT_FROM_EMAIL, recipients)
            except OSError:
                reminder.delete()  # given back: the next run tries again
                logger.exception("Could not email the reminder of %s", incident.reference)
                continue
            sent += 1
    return sent


def _email(incident, clock):
    with translation.override("ja"):
        values = {
            "reference": incident.reference,
            "report": str(clock.label),
            "due": timezone.localtime(clock.due).strftime("%Y-%m-%d %H:%M"),
            "days": clock.days_left,
        }
        if clock.overdue:
            subject = _("Overdue: the %(report)s of %(reference)s was due on %(due)s") % values
        else:
            subject = _("%(report)s of %(reference)s due in %(days)s days (%(due)s)") % values
        body = _(
            "A personal-data breach must be reported to the PPC on time (APPI art. 26).\n\n"
            "Incident: %(reference)s %(title)s\nReport: %(report)s\nDue: %(due)s\n\n"
            "Open the incident: %(url)s"
        ) % {
            **values,
            "title": incident.title,
            "url": settings.PUBLIC_BASE_URL
            + reverse("admin:incidents_incident_change", args=[incident.pk]),
        }
    return subject, body
