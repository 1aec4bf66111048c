"""What the sections of the compliance report share: the section and figure shapes, links,
the period's indexed querysets, and the bar chart."""

from datetime import timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from audit.models import AccessEvent
from consent.models import ConsentRecord
from contactcenter.models import Call
from recordings.models import Recording

from . import charts

Action = AccessEvent.Action
Decision = ConsentRecord.Decision
Status = Recording.Status

EXCEPTIONS_LISTED = 200
# The purge runs every hour (CELERY_BEAT_SCHEDULE "purge-recordings"); a recording purged
# within a day of the end of its retention is on time, later is late and needs a reason.
PURGE_GRACE = timedelta(days=1)
# How long after the end of the call Twilio's copy was deleted: the buckets of the figure.
TWILIO_LAG_BUCKETS = (timedelta(hours=1), timedelta(days=1), timedelta(days=7))
# Recordings that never held audio: nothing was recorded, so there is no consent to check.
WITHOUT_AUDIO = (Status.ABSENT, Status.FAILED)


def section(rule, title, mechanism, *, figures=(), exceptions=(), evidence=(), chart=""):
    """A section of the report: ``figures`` are dicts of label, value (text), ok (True, False
    or None when the figure is information only) and note; ``exceptions`` and ``evidence``
    are dicts of text/label and url; ``chart`` is an SVG drawn on the server, or ""."""
    return {
        "rule": rule,
        "title": title,
        "mechanism": mechanism,
        "figures": list(figures),
        "exceptions": list(exceptions),
        "evidence": list(evidence),
        "chart": chart,
    }


def figure(label, value, *, ok=None, note=""):
    if isinstance(value, int):
        value = f"{value:,}"
    return {"label": label, "value": str(value), "ok": ok, "note": note}


def absolute(path):
    """Links in the report are absolute, so that they work from the PDF too."""
    return settings.PUBLIC_BASE_URL.rstrip("/") + path


def changelist(name, **params):
    url = reverse(f"admin:{name}_changelist")
    return absolute(f"{url}?{urlencode(params)}" if params else url)


def change_page(name, pk):
    return absolute(reverse(f"admin:{name}_change", args=[pk]))


def local(moment):
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M") if moment else "—"


class Period:
    """The period and the querysets every section starts from (each on an indexed range)."""

    def __init__(self, start, end):
        self.start, self.end = start, end
        self.calls = Call.objects.filter(started_at__gte=start, started_at__lt=end)
        # Recordings through their calls: ``recordings.call_id`` is indexed, ``started_at``
        # of recordings is not, and a recording belongs to the period of its call.
        self.recordings = Recording.objects.filter(
            call__started_at__gte=start, call__started_at__lt=end
        )
        self.events = AccessEvent.objects.filter(occurred_at__gte=start, occurred_at__lt=end)
        self.ledger = ConsentRecord.objects.filter(recorded_at__gte=start, recorded_at__lt=end)

    def range(self, field):
        return {f"{field}__gte": self.start.isoformat(), f"{field}__lt": self.end.isoformat()}


LABEL_Y = charts.HEIGHT + 10  # the bars' labels, under them


def _middle(bar):
    return round(bar.x + bar.width / 2, 2)


def bar_chart(values, labels, caption):
    """Bars for a few ``values``, each with its ``label`` written under it (the PDF shows no
    tooltips), under ``caption``; an SVG that needs no script or style sheet."""
    bars = charts.bars(values, labels)
    rects = format_html_join(
        "",
        '<rect x="{}" y="{}" width="{}" height="{}" fill="#1f5fa8"><title>{}</title></rect>'
        '<text x="{}" y="{}" font-size="7" text-anchor="middle" fill="#333">{}</text>',
        (
            (*(bar.x, bar.y, bar.width, bar.height), bar.label, _middle(bar), LABEL_Y, bar.label)
            for bar in bars
        ),
    )
    return format_html(
        '<svg class="chart" viewBox="0 -16 {w} {full}" width="{w}" height="{full}" role="img" '
        'aria-label="{caption}"><title>{caption}</title>'
        '<text x="0" y="-5" font-size="8" fill="#333">{caption}</text>{rects}</svg>',
        full=charts.HEIGHT + 30,
        w=charts.WIDTH,
        caption=caption,
        rects=rects,
    )
