"""Bring recordings and calls in line with Twilio's lists (beat also runs this every 15 min)."""

import re
from datetime import UTC, datetime, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from recordings.models import ReconciliationRun
from recordings.reconcile import reconcile

UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def parse_since(value, *, now):
    """``2026-12-01``, ``2026-12-01T09:00+09:00`` or a duration back from now: ``90m``,
    ``6h``, ``2d``."""
    value = value.strip()
    if match := re.fullmatch(r"(\d+)\s*([mhd])", value):
        return now - timedelta(**{UNITS[match.group(2)]: int(match.group(1))})
    moment = parse_datetime(value)
    if moment is None and (day := parse_date(value)) is not None:
        moment = datetime(day.year, day.month, day.day)
    if moment is None:
        raise CommandError(
            f"--since: expected a date (2026-12-01), a date and time or a duration "
            f"(90m, 6h, 2d), got {value!r}"
        )
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment.astimezone(UTC)


class Command(BaseCommand):
    help = (
        "List Twilio's recordings and calls and bring ours in line: fetch or delete at Twilio "
        "every recording we did not know of, retry Twilio deletions, close calls whose end "
        "was never told. Without --since, read back to the last clean run (at least 24 h)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--since",
            help="From when to list: a date, a date and time, or a duration (90m, 6h, 2d).",
        )

    def handle(self, *args, since=None, **options):
        now = timezone.now()
        run = reconcile(since=parse_since(since, now=now) if since else None, now=now)
        summary = (
            f"since {run.since.isoformat()}: {run.recordings_seen} recording(s) and "
            f"{run.calls_seen} call(s) seen, {run.created} created, {run.queued} queued, "
            f"{run.deleted_at_twilio} deleted at Twilio, {run.calls_closed} call(s) closed, "
            f"{run.errors} error(s)"
        )
        if run.status == ReconciliationRun.Status.FAILED:
            raise CommandError(f"Reconciliation failed {summary}\n{run.error_text}")
        self.stdout.write(self.style.SUCCESS(f"Reconciled {summary}"))
        if run.error_text:
            self.stderr.write(run.error_text)
