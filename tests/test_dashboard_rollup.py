"""Issue 15 (deliver 5): the dashboard reads the past days from a rollup (a row per day) and
counts only today live; the rollup is counted again every ten minutes by Celery beat, and by
the page itself when no worker runs (tasks in-process)."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from backoffice import dashboard
from backoffice.models import DailyFigures
from backoffice.tasks import refresh_daily_figures
from recordings.models import Recording

from .factories import CallFactory
from .test_dashboard import days_ago, recording

pytestmark = pytest.mark.django_db


def test_the_past_days_are_stored_once_and_today_is_counted_live(operator, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False  # a worker and beat run: the page never recounts
    CallFactory(operator=operator, started_at=days_ago(2), answered_at=days_ago(2))
    first = dashboard.figures()
    assert DailyFigures.objects.count() == 29  # the 29 days before today
    assert first["windows"]["week"]["calls"] == 1

    CallFactory(operator=operator, started_at=days_ago(2))  # a late import into a past day
    CallFactory(operator=operator, started_at=days_ago(0, hour=0))
    again = dashboard.figures()
    assert again["windows"]["today"]["calls"] == 1  # today: live
    assert again["windows"]["week"]["calls"] == 2  # the past day: as stored

    refresh_daily_figures()  # what beat runs every ten minutes
    assert dashboard.figures()["windows"]["week"]["calls"] == 3
    assert DailyFigures.objects.get(day=days_ago(2).date()).calls == 2


def test_a_recording_fetched_after_its_day_is_counted_at_the_next_refresh(operator, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    call = CallFactory(operator=operator, started_at=days_ago(1), answered_at=days_ago(1))
    late = recording(call, Recording.Status.COMPLETED)
    assert dashboard.figures()["windows"]["week"]["waiting"] == 1
    Recording.objects.filter(pk=late.pk).update(
        status=Recording.Status.STORED, wrapped_key=b"k", blob_name="late.enc"
    )
    refresh_daily_figures()
    week = dashboard.figures()["windows"]["week"]
    assert (week["waiting"], week["stored"]) == (0, 1)


def test_without_a_worker_the_page_counts_stale_days_again(operator, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True  # tasks in-process: no beat to refresh
    dashboard.figures()
    CallFactory(operator=operator, started_at=days_ago(3))
    assert dashboard.figures()["windows"]["week"]["calls"] == 0  # counted less than 10 min ago
    later = timezone.now() + timedelta(minutes=11)
    assert dashboard.figures(now=later)["windows"]["week"]["calls"] == 1


def test_beat_refreshes_the_rollup_every_ten_minutes():
    entry = settings.CELERY_BEAT_SCHEDULE["refresh-daily-figures"]
    assert entry["task"] == refresh_daily_figures.name
    assert entry["schedule"] == 600
