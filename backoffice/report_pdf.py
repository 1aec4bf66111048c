"""The compliance report as a document: the period asked for, the HTML, the PDF (WeasyPrint
with the Noto CJK fonts), and the audit event each production writes.

The page (``views.compliance_report``) and ``manage.py compliance_report`` both go through
``produce``, so that a report is never made without its audit event.
"""

import base64
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path

from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from audit import services as audit
from audit.models import AccessEvent
from privacy import organisation

from . import compliance

MAX_DAYS = 366
EARLIEST, LATEST = date(2000, 1, 1), date(9998, 12, 31)
LANGUAGES = ("ja", "en")
FORMATS = ("html", "pdf")
TEMPLATE = "backoffice/compliance_report.html"
PRINT_BASE = "backoffice/compliance_print_base.html"
CSS = Path(__file__).resolve().parent / "static" / "backoffice" / "compliance.css"


class BadPeriod(ValueError):
    """The dates asked for do not make a period; ``message`` says why, for a person."""

    def __init__(self, message):
        super().__init__(str(message))
        self.message = message


@dataclass(frozen=True)
class Period:
    first_day: date
    last_day: date  # inclusive

    @property
    def start(self):
        return datetime.combine(self.first_day, time.min, tzinfo=timezone.get_current_timezone())

    @property
    def end(self):
        """The midnight after the last day (the period is ``[start, end)``)."""
        return datetime.combine(
            self.last_day + timedelta(days=1), time.min, tzinfo=timezone.get_current_timezone()
        )


def last_full_month(today=None):
    today = today or timezone.localdate()
    last_day = today.replace(day=1) - timedelta(days=1)
    return Period(last_day.replace(day=1), last_day)


def parse_period(first, last):
    """The period of the days ``first`` to ``last`` (YYYY-MM-DD, Asia/Tokyo, inclusive), or
    ``BadPeriod``: unreadable dates, the first after the last, more than ``MAX_DAYS`` days."""
    try:
        first_day = date.fromisoformat((first or "").strip())
        last_day = date.fromisoformat((last or "").strip())
    except ValueError:
        raise BadPeriod(
            _("Give the period as two dates in the form YYYY-MM-DD (e.g. 2026-11-01).")
        ) from None
    if first_day < EARLIEST or last_day > LATEST:
        # Far dates cannot be turned into times (and no recording is that old or new).
        raise BadPeriod(
            _("Give days between %(earliest)s and %(latest)s.")
            % {"earliest": EARLIEST.isoformat(), "latest": LATEST.isoformat()}
        )
    if first_day > last_day:
        raise BadPeriod(_("The first day of the period comes after its last day."))
    if (last_day - first_day).days + 1 > MAX_DAYS:
        raise BadPeriod(
            _("The period is longer than %(days)s days; ask for a shorter one.")
            % {"days": MAX_DAYS}
        )
    return Period(first_day, last_day)


def print_css():
    """The style sheet as base64 for a ``data:`` link: the document stands alone (the PDF, the
    command's ``.html``) and our templates hold no ``<style>`` element (tests/test_security_web)."""
    return base64.b64encode(CSS.read_bytes()).decode()


def context(*, period, language, sections, produced_by):
    return {
        "sections": sections,
        "organisation": organisation.current(),
        "first_day": period.first_day,
        "last_day": period.last_day,
        "produced_at": timezone.localtime(),
        "produced_by": produced_by,
        "report_language": language,
    }


def render_document(report_context, *, for_pdf):
    """The standalone HTML document (the PDF's source, or the command's ``.html``)."""
    return render_to_string(
        TEMPLATE,
        {
            **report_context,
            "base_template": PRINT_BASE,
            "standalone": True,
            "for_pdf": for_pdf,
            "print_css": print_css(),
        },
    )


class PdfUnavailable(Exception):
    """This machine cannot typeset PDFs (WeasyPrint cannot load Pango); ``message`` says what
    to install. The page and the HTML output still work."""

    def __init__(self, message):
        super().__init__(str(message))
        self.message = message


def write_pdf(html):
    """The PDF of ``html``: WeasyPrint lays it out with the fonts installed (fontconfig)."""
    try:
        # Imported here: loading it costs time the admin's other pages do not pay.
        import weasyprint
    except (OSError, ImportError) as error:  # Pango (a system library) is missing
        raise PdfUnavailable(
            _(
                "PDFs cannot be made on this server: WeasyPrint needs Pango and the Noto CJK "
                "fonts (apt-get install libpango-1.0-0 libpangoft2-1.0-0 fonts-noto-cjk). "
                "The report's page can be printed meanwhile."
            )
        ) from error
    return weasyprint.HTML(string=html, base_url=str(CSS.parent)).write_pdf()


def produce(*, period, language, output, actor=None, actor_label="", request=None):
    """Build the report for ``period`` in ``language`` and write its audit event; return
    ``(report_context, document)`` where ``document`` is the PDF's bytes, the standalone
    HTML's text, or None for ``output="page"`` (the view renders the page itself)."""
    with translation.override(language):
        sections = compliance.build(start=period.start, end=period.end, language=language)
        produced_by = actor_label or (
            actor.get_username() if actor is not None else request.user.get_username()
        )
        report_context = context(
            period=period, language=language, sections=sections, produced_by=produced_by
        )
        document = None
        if output == "pdf":
            document = write_pdf(render_document(report_context, for_pdf=True))
        elif output == "html":
            document = render_document(report_context, for_pdf=False)
    audit.record(
        AccessEvent.Action.COMPLIANCE_REPORT,
        actor=actor,
        actor_label=actor_label,
        detail={
            "from": period.first_day.isoformat(),
            "to": period.last_day.isoformat(),
            "format": output,
            "language": language,
        },
        request=request,
    )
    return report_context, document
