"""The compliance report: for a period, one section per rule of DESIGN.md (R1–R12) and the
audit trail, each with the mechanism, the figures and the evidence an auditor checks.

``build(start=…, end=…, language=…)`` returns the report as plain data (a list of section
dicts, see ``section``), so that ``incidents`` (which may not import this app) supplies its own
section in the same shape. The page (``views.compliance_report``) and the command
(``manage.py compliance_report``) render it as HTML or PDF (``report_pdf``).

Cost: the report is produced on demand by compliance officers, not on a page opened all day.
Every figure is an aggregate (GROUP BY or conditional COUNT) over an indexed date range —
calls by ``call_started_idx``, consent records by ``consent_decision_idx``, audit events by
``access_event_action_idx``, recordings through their calls — so a month (~300,000 calls) costs
a fixed number of queries whatever the volume; lists of exceptions are capped at
``EXCEPTIONS_LISTED`` with their total given. Small tables (notices, holds, customers'
requests, provision records, cross-border checks) are read by their dates directly.
"""

from django.utils import translation

from incidents.report import compliance_section

from .compliance_audit import audit_trail
from .compliance_base import Period, figure, section
from .compliance_consent import announcement, consent, live_control, notices
from .compliance_records import (
    hearing,
    protection,
    public_matters,
    retention,
    rights,
    use,
    uses_made_easy,
)

__all__ = ["build", "figure", "section"]


def build(*, start, end, language):
    """The report for ``[start, end)`` (aware datetimes), in ``language`` ("ja" or "en"):
    a list of section dicts, R1 to R12 and the audit trail, in that order."""
    with translation.override(language):
        period = Period(start, end)
        return [
            notices(period),
            announcement(period),
            consent(period),
            live_control(period),
            protection(period),
            use(period),
            retention(period),
            hearing(period),
            rights(period),
            uses_made_easy(period),
            public_matters(period),
            compliance_section(start=start, end=end),
            audit_trail(period),
        ]
