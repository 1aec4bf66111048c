"""The deadlines of the two reports to the PPC, counted from when the breach became known.

速報 (preliminary): "promptly" (PPC rule 8(1)); the PPC's guidance reads it as about 3 to 5
days, so ``INCIDENT_PRELIMINARY_DAYS`` (default 5) after ``became_known_at``. 確報 (final):
30 days, or 60 days when rule 7 (3) applies (a suspected unlawful act), rule 8(2).
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

FINAL_DAYS = 30
FINAL_DAYS_UNLAWFUL = 60


@dataclass
class Clock:
    report: str  # "preliminary" | "final"
    label: str
    due: datetime
    submitted_at: datetime | None
    now: datetime

    @property
    def days_left(self):
        """Whole days from today to the due day (local dates); negative when overdue."""
        return (timezone.localdate(self.due) - timezone.localdate(self.now)).days

    @property
    def days_overdue(self):
        return max(-self.days_left, 0)

    @property
    def overdue(self):
        return self.submitted_at is None and self.now > self.due

    @property
    def submitted_late(self):
        return self.submitted_at is not None and self.submitted_at > self.due

    @property
    def open(self):
        return self.submitted_at is None


def preliminary_due(incident):
    return incident.became_known_at + timedelta(days=settings.INCIDENT_PRELIMINARY_DAYS)


def final_due(incident):
    days = FINAL_DAYS_UNLAWFUL if incident.category_unlawful else FINAL_DAYS
    return incident.became_known_at + timedelta(days=days)


def clocks(incident, *, now=None):
    """Both clocks of ``incident`` (whether it is reportable is ``reportability``'s answer)."""
    now = now or timezone.now()
    return [
        Clock(
            "preliminary",
            _("Preliminary report (速報)"),
            preliminary_due(incident),
            incident.preliminary_submitted_at,
            now,
        ),
        Clock(
            "final",
            _("Final report (確報)"),
            final_due(incident),
            incident.final_submitted_at,
            now,
        ),
    ]


@dataclass
class Reportability:
    reportable: bool | None  # None: not known until the encryption test has run
    reason: str

    @property
    def clocks_run(self):
        return self.reportable is not False


def reportability(incident):
    """Whether the incident must be reported (art. 26): a rule 7 category applies and at
    least one affected recording was not protected by strong encryption with its key kept
    apart. Read from the counts the scoping and the test stored, no query."""
    if not incident.categories:
        return Reportability(False, _("No category of rule 7 (1)–(4) applies."))
    if incident.tested_at is None:
        return Reportability(
            None,
            _(
                "The encryption test has not run yet: the deadlines run from when it became "
                "known until it shows every affected recording was protected."
            ),
        )
    if incident.scoped_recordings == 0:
        return Reportability(
            False,
            _(
                "No recording of this system was in the affected scope: nothing of it needs "
                "to be reported or told."
            ),
        )
    if incident.unprotected_recordings == 0:
        return Reportability(
            False,
            _(
                "Every affected recording was protected by strong encryption with its key kept "
                "apart (or nothing readable was held): no report or notification is needed. "
                "The evidence is kept per recording."
            ),
        )
    return Reportability(
        True,
        _("%(count)s affected recordings were not protected.")
        % {"count": incident.unprotected_recordings},
    )


DASHBOARD_LIMIT = 20


def open_incidents(*, now=None, limit=DASHBOARD_LIMIT):
    """The open incidents with their clocks, soonest known first: one query on
    ``incident_open_idx`` (open incidents are few; the list stops at ``limit``)."""
    from .models import Incident

    now = now or timezone.now()
    rows = []
    for incident in Incident.objects.filter(status=Incident.Status.OPEN).order_by(
        "became_known_at"
    )[:limit]:
        state = reportability(incident)
        rows.append(
            {
                "incident": incident,
                "reportability": state,
                "clocks": clocks(incident, now=now) if state.clocks_run else [],
            }
        )
    return rows
