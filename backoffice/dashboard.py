"""The supervisor's home page: today's and the last 7 and 30 days' figures, and the audit head.

Every figure is one indexed range query (calls by ``started_at``, consent by ``recorded_at``,
recordings through their call's ``started_at``, requests by ``(status, due_at)``, the purge and
hold figures by the recordings' own list filters), grouped or aggregated so that the page runs a
constant number of queries whatever the volume: the 30 days of calls and consent come back as at
most 30 rows each and the 7-day and today figures are summed from them.
"""

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from django.db.models import Count, Q
from django.db.models.functions import TruncDate
from django.utils import timezone

from audit import anchors
from audit.models import AccessEvent
from consent.models import ConsentRecord
from contactcenter.models import Call
from portal.models import CustomerRequest
from recordings.models import LegalHold, Recording
from training.services import reviews_awaiting_feedback

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


def _per_day(rows, today, keys):
    by_day = {row["day"]: row for row in rows}
    days = []
    for offset in range(DAYS - 1, -1, -1):
        day = today - timedelta(days=offset)
        row = by_day.get(day, {})
        days.append({"day": day, **{key: row.get(key, 0) or 0 for key in keys}})
    return days


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
    month_start = starts["month"]

    calls = _per_day(
        Call.objects.filter(started_at__gte=month_start, started_at__lt=end)
        .annotate(day=TruncDate("started_at"))
        .values("day")
        .annotate(
            calls=Count("pk"),
            answered=Count("pk", filter=Q(answered_at__isnull=False)),
            missed=Count("pk", filter=Q(missed=True)),
        )
        .order_by("day"),
        today,
        ("calls", "answered", "missed"),
    )
    consent = _per_day(
        ConsentRecord.objects.filter(
            recorded_at__gte=month_start, recorded_at__lt=end, customer__isnull=False
        )
        .annotate(day=TruncDate("recorded_at"))
        .values("day")
        .annotate(
            granted=Count("pk", filter=Q(decision=ConsentRecord.Decision.GRANTED)),
            refused=Count("pk", filter=Q(decision=ConsentRecord.Decision.REFUSED)),
        )
        .order_by("day"),
        today,
        ("granted", "refused"),
    )
    recording_statuses = {
        "stored": Recording.Status.STORED,
        "waiting": Recording.Status.COMPLETED,
        "fetch_failed": Recording.Status.FETCH_FAILED,
    }
    recordings = Recording.objects.filter(
        call__started_at__gte=month_start, call__started_at__lt=end
    ).aggregate(
        **{
            f"{key}_{window}": Count(
                "pk", filter=Q(status=status, call__started_at__gte=starts[window])
            )
            for key, status in recording_statuses.items()
            for window in starts
        }
    )
    open_statuses = [CustomerRequest.Status.RECEIVED, CustomerRequest.Status.IN_REVIEW]
    requests = CustomerRequest.objects.filter(status__in=open_statuses).aggregate(
        open=Count("pk"), overdue=Count("pk", filter=Q(due_at__lt=now))
    )

    windows = {}
    for name, days in WINDOWS:
        granted, refused = _sum(consent, "granted", days), _sum(consent, "refused", days)
        answers = granted + refused
        windows[name] = {
            "start": starts[name],
            "calls": _sum(calls, "calls", days),
            "answered": _sum(calls, "answered", days),
            "missed": _sum(calls, "missed", days),
            "granted": granted,
            "refused": refused,
            "granted_rate": round(100 * granted / answers) if answers else None,
            "refused_rate": round(100 * refused / answers) if answers else None,
            **{key: recordings[f"{key}_{name}"] for key in recording_statuses},
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
    }
