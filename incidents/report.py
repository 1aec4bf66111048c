"""The incidents section (R12) of the compliance report built in ``backoffice``.

Incidents are few (a handful a year), so the incidents known in the period and those whose
reports fell due in it are read whole; the persons notified are counted over the
notifications' ``sent_at`` in the period (an indexed date range of one small table).
"""

from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.urls import reverse
from django.utils.translation import gettext as _

from . import clocks
from .models import Incident, IncidentNotification


def compliance_section(*, start, end):
    """One section dict for the compliance report; ``start``/``end`` aware, end exclusive."""
    known = list(Incident.objects.filter(became_known_at__gte=start, became_known_at__lt=end))
    reportable = [i for i in known if clocks.reportability(i).reportable]
    not_reportable = [i for i in known if clocks.reportability(i).reportable is False]
    # Reports that fell due in the period: became known at most 60 days before its end.
    candidates = Incident.objects.filter(
        became_known_at__gte=start - timedelta(days=clocks.FINAL_DAYS_UNLAWFUL),
        became_known_at__lt=end,
    )
    due = on_time = late = overdue = 0
    exceptions = []
    for incident in candidates:
        if not clocks.reportability(incident).clocks_run:
            continue
        url = settings.PUBLIC_BASE_URL + reverse(
            "admin:incidents_incident_change", args=[incident.pk]
        )
        for clock in clocks.clocks(incident, now=end):
            if not (start <= clock.due < end):
                continue
            due += 1
            if clock.submitted_late:
                late += 1
                exceptions.append(
                    {
                        "text": _("%(reference)s: the %(report)s was submitted late.")
                        % {"reference": incident.reference, "report": clock.label},
                        "url": url,
                    }
                )
            elif clock.overdue:
                overdue += 1
                exceptions.append(
                    {
                        "text": _("%(reference)s: the %(report)s is overdue.")
                        % {"reference": incident.reference, "report": clock.label},
                        "url": url,
                    }
                )
            elif clock.submitted_at is not None:
                on_time += 1
    notified = IncidentNotification.objects.filter(
        Q(sent_at__gte=start, sent_at__lt=end), status=IncidentNotification.Status.SENT
    ).count()
    return {
        "rule": "R12",
        "title": _("Personal-data breaches"),
        "mechanism": _(
            "Each incident is scoped from the system, every affected recording gets the "
            "strong-encryption test with its evidence, and the 速報/確報 deadlines run from "
            "when it became known, with reminders to the compliance officers."
        ),
        "figures": [
            {
                "label": _("Incidents that became known"),
                "value": str(len(known)),
                "ok": None,
                "note": "",
            },
            {
                "label": _("Reportable"),
                "value": str(len(reportable)),
                "ok": None,
                "note": _("%(count)s not reportable (protected or no category)")
                % {"count": len(not_reportable)},
            },
            {
                "label": _("Reports due in the period"),
                "value": str(due),
                "ok": None if not due else (late == 0 and overdue == 0),
                "note": _("%(on_time)s on time, %(late)s late, %(overdue)s overdue")
                % {"on_time": on_time, "late": late, "overdue": overdue},
            },
            {
                "label": _("Persons notified"),
                "value": str(notified),
                "ok": None,
                "note": "",
            },
        ],
        "exceptions": exceptions,
        "evidence": [
            {
                "label": _("Incidents"),
                "url": settings.PUBLIC_BASE_URL + reverse("admin:incidents_incident_changelist"),
            },
            {
                "label": _("Notifications of persons"),
                "url": settings.PUBLIC_BASE_URL
                + reverse("admin:incidents_incidentnotification_changelist"),
            },
        ],
        "chart": "",
    }
