"""The supervisor's home page: today's and the last 7 and 30 days' figures, and the audit head.

The calls, consent and recordings of the 29 days before today are read from the rollup
(``backoffice/rollup.py``: a stored row per day); today's are counted live by three indexed range
queries over today's rows. The 7-day and 30-day figures are sums of the days. The other figures
are indexed queries of their own (requests by ``(status, due_at)``, the purge figure by the
recordings' ``(status, retain_until)`` index, holds from their small table), so the page runs a
constant number of queries whatever the volume.
"""

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from django.db.models import Count, Q
from django.utils import timezone

from audit import anchors
from audit.models import AccessEvent
from incidents.clocks import open_incidents
from portal.models import CustomerRequest
from recordings.models import LegalHold, Recording
from training.services import reviews_awaiting_feedback

from . import rollup

DAYS = 30
WINDOWS = (("today", 1), ("week", 7), ("month", 30))
# Counted up to this many: the figure links to the list that shows them all.
AWAITING_CAP = 100


@dataclass
class AuditHead:
    head_seq: int | None
    checkpoint_seq: int | None
    checkpoint_at: str
    matches: bool | None  # None: nothing anchored yet
    problem: str = ""

    @property
    def unanchored(self):
        if self.head_seq is None:
            return 0
        return self.head_seq - (self.checkpoint_seq or 0)


def window_starts(now):
    """The local midnight that starts each window (today, 7 days, 30 days) and tomorrow's."""
    today = timezone.localtime(now).date()
    tz = timezone.get_current_timezone()
    midnight = datetime.combine(today, time.min, tzinfo=tz)
    return (
        today,
        {name: midnight - timedelta(days=days - 1) for name, days in WINDOWS},
        (midnight + timedelta(days=1)),
    )


def _sum(days, key, last):
    return sum(day[key] for day in days[-last:])


def audit_head():
    """The chain's head and whether the event the newest checkpoint signed still has the hash
    it signed (two queries on the ``seq`` index). The full check is ``verify_audit``."""
    head_seq = AccessEvent.objects.order_by("-seq").values_list("seq", flat=True).first()
    try:
        checkpoint = anchors.latest_checkpoint()
    except anchors.AnchorError as error:
        return AuditHead(head_seq, None, "", False, str(error))
    if checkpoint is None:
        return AuditHead(head_seq, None, "", None)
    if not checkpoint.signature_ok:
        return AuditHead(
            head_seq, checkpoint.seq, checkpoint.anchored_at, False, checkpoint.problem
        )
    stored = AccessEvent.objects.filter(seq=checkpoint.seq).values_list("hash", flat=True).first()
    return AuditHead(head_seq, checkpoint.seq, checkpoint.anchored_at, stored == checkpoint.hash)


def figures(*, now=None):
    """Everything the dashboard shows, as plain data (see the module docstring for the cost)."""
    now = now or timezone.now()
    today, starts, end = window_starts(now)
    by_day = {**rollup.past_days(today, now=now), **rollup.count_days(today, today)}
    days = [
        {"day": day, **by_day.get(day, dict.fromkeys(rollup.KEYS, 0))}
        for day in (today - timedelta(days=offset) for offset in range(DAYS - 1, -1, -1))
    ]
    calls = [{key: day[key] for key in ("day", "calls", "answered", "missed")} for day in days]
    consent = [{key: day[key] for key in ("day", "granted", "refused")} for day in days]
    recording_keys = tuple(rollup.RECORDING_STATUSES)
    open_statuses = CustomerRequest.OPEN_STATUSES
    requests = CustomerRequest.objects.filter(status__in=open_statuses).aggregate(
        open=Count("pk"), overdue=Count("pk", filter=Q(due_at__lt=now))
    )

    windows = {}
    for name, days_in_window in WINDOWS:
        granted = _sum(consent, "granted", days_in_window)
        refused = _sum(consent, "refused", days_in_window)
        answers = granted + refused
        windows[name] = {
            "start": starts[name],
            "calls": _sum(calls, "calls", days_in_window),
            "answered": _sum(calls, "answered", days_in_window),
            "missed": _sum(calls, "missed", days_in_window),
            "granted": granted,
            "refused": refused,
            "granted_rate": round(100 * granted / answers) if answers else None,
            "refused_rate": round(100 * refused / answers) if answers else None,
            **{key: _sum(days, key, days_in_window) for key in recording_keys},
        }
    awaiting = reviews_awaiting_feedback().values("pk")[:AWAITING_CAP].count()
    return {
        "now": now,
        "end": end,
        "windows": windows,
        "calls_per_day": calls,
        "consent_per_day": consent,
        "due_this_week": Recording.objects.due_for_purge(now + timedelta(days=7)).count(),
        # Holds are few (a row per held recording); counting them avoids a scan of recordings.
        "on_hold": LegalHold.objects.active().values("recording").distinct().count(),
        "requests_open": requests["open"],
        "requests_overdue": requests["overdue"],
        "awaiting_feedback": awaiting,
        "awaiting_capped": awaiting >= AWAITING_CAP,
        "audit": audit_head(),
        # Open breaches with their 速報/確報 deadlines (one query on the incidents' index).
        "incidents": open_incidents(now=now),
    }
