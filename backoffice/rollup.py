"""The dashboard's figures per day, counted once for the past days (``DailyFigures``).

``count_days(first, last)`` runs three grouped range queries (calls by ``started_at``, consent
by ``recorded_at``, recordings through their call's ``started_at``) for the days from ``first``
to ``last``, local time. ``past_days(today)`` reads the stored rows of the 29 days before
today and counts only the days missing (after midnight, yesterday; on a new installation,
all of them). ``refresh()`` counts the past 30 days again, every ten minutes from Celery beat
(``backoffice.tasks.refresh_daily_figures``), because recordings of a past day are still
fetched, retried or purged; without a worker (tasks in-process, a small installation) the
page itself counts again the rows older than ``STALE_AFTER``.
"""

from datetime import datetime, time, timedelta

from django.conf import settings
from django.db.models import Count, Q
from django.db.models.functions import TruncDate
from django.utils import timezone

from consent.models import ConsentRecord
from contactcenter.models import Call
from recordings.models import Recording

from .models import DailyFigures

DAYS = 30
KEYS = ("calls", "answered", "missed", "granted", "refused", "stored", "waiting", "fetch_failed")
STALE_AFTER = timedelta(minutes=10)
RECORDING_STATUSES = {
    "stored": Recording.Status.STORED,
    "waiting": Recording.Status.COMPLETED,
    "fetch_failed": Recording.Status.FETCH_FAILED,
}


def midnight(day):
    return datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone())


def count_days(first, last):
    """``{day: {key: count}}`` for every day from ``first`` to ``last`` (both included)."""
    start, end = midnight(first), midnight(last + timedelta(days=1))
    span = range((last - first).days + 1)
    days = {first + timedelta(days=n): dict.fromkeys(KEYS, 0) for n in span}
    calls = (
        Call.objects.filter(started_at__gte=start, started_at__lt=end)
        .annotate(day=TruncDate("started_at"))
        .values("day")
        .annotate(
            calls=Count("pk"),
            answered=Count("pk", filter=Q(answered_at__isnull=False)),
            missed=Count("pk", filter=Q(missed=True)),
        )
        .order_by()
    )
    consent = (
        ConsentRecord.objects.filter(
            recorded_at__gte=start, recorded_at__lt=end, customer__isnull=False
        )
        .annotate(day=TruncDate("recorded_at"))
        .values("day")
        .annotate(
            granted=Count("pk", filter=Q(decision=ConsentRecord.Decision.GRANTED)),
            refused=Count("pk", filter=Q(decision=ConsentRecord.Decision.REFUSED)),
        )
        .order_by()
    )
    recordings = (
        Recording.objects.filter(call__started_at__gte=start, call__started_at__lt=end)
        .annotate(day=TruncDate("call__started_at"))
        .values("day")
        .annotate(
            **{
                key: Count("pk", filter=Q(status=status))
                for key, status in RECORDING_STATUSES.items()
            }
        )
        .order_by()
    )
    for rows in (calls, consent, recordings):
        for row in rows:
            day = row.pop("day")
            if day in days:
                days[day].update(row)
    return days


def store(days, *, now):
    DailyFigures.objects.bulk_create(
        [DailyFigures(day=day, counted_at=now, **figures) for day, figures in days.items()],
        update_conflicts=True,
        unique_fields=["day"],
        update_fields=[*KEYS, "counted_at"],
    )


def refresh(*, now=None, days=DAYS):
    """Count the ``days`` days before today again and store them."""
    now = now or timezone.now()
    today = timezone.localtime(now).date()
    counted = count_days(today - timedelta(days=days - 1), today - timedelta(days=1))
    store(counted, now=now)
    return counted


def past_days(today, *, now, days=DAYS):
    """``{day: {key: count}}`` of the ``days - 1`` days before ``today``, from the stored rows;
    the days missing (or stale, without a worker to refresh them) are counted now."""
    first = today - timedelta(days=days - 1)
    stored = {
        row["day"]: row
        for row in DailyFigures.objects.filter(day__gte=first, day__lt=today).values(
            "day", "counted_at", *KEYS
        )
    }
    refresh_here = settings.CELERY_TASK_ALWAYS_EAGER  # no beat: nobody else counts again
    wanted = [
        first + timedelta(days=n)
        for n in range(days - 1)
        if first + timedelta(days=n) not in stored
        or (refresh_here and stored[first + timedelta(days=n)]["counted_at"] < now - STALE_AFTER)
    ]
    if wanted:
        counted = count_days(min(wanted), max(wanted))
        store(counted, now=now)
        stored.update({day: {"day": day, **figures} for day, figures in counted.items()})
    return {day: {key: stored[day][key] for key in KEYS} for day in sorted(stored)}
