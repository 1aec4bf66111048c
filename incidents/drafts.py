"""Drafts of the 速報 and 確報 to the PPC, with the items of PPC rule 8 (1)–(9) filled in from
the incident. The officer copies them into the PPC's form; marking one submitted is
``services.mark_submitted``."""

from django.db.models import Count, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from privacy import organisation

from .clocks import clocks, reportability
from .models import Incident


def _date(value):
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M") if value else "—"


def _categories(incident):
    names = {
        1: _("(1) special-care-required personal information"),
        2: _("(2) data whose misuse may cause financial loss"),
        3: _("(3) suspected unlawful purpose (e.g. unauthorised access)"),
        4: _("(4) more than 1,000 persons"),
    }
    return "、".join(str(names[number]) for number in incident.categories) or _("none")


def _notification_status(incident):
    counts = incident.notifications.aggregate(
        sent=Count("pk", filter=Q(status="sent")),
        failed=Count("pk", filter=Q(status="failed")),
        public=Count("pk", filter=Q(status="public")),
    )
    sent, failed, public = counts["sent"], counts["failed"], counts["public"]
    if not (sent or failed or public):
        return _("The affected persons have not been notified yet.")
    return _(
        "%(sent)s persons were told by SMS or a voice call; %(public)s with a withheld number "
        "and %(failed)s whose message could not be delivered are covered by the public notice."
    ) % {"sent": sent, "public": public, "failed": failed}


def draft(incident, report):
    """The report ``report`` ("preliminary" | "final") as a title and its numbered items."""
    report_clock = next(clock for clock in clocks(incident) if clock.report == report)
    org = organisation.current()
    scope = Incident.ScopeKind(incident.scope_kind).label
    items = [
        (
            _("Summary"),
            _(
                "%(description)s\nOccurred: %(occurred_from)s – %(occurred_to)s. Became known: "
                "%(known)s. Scope: %(scope)s. Category under rule 7: %(categories)s."
            )
            % {
                "description": incident.description,
                "occurred_from": _date(incident.occurred_from),
                "occurred_to": _date(incident.occurred_to),
                "known": _date(incident.became_known_at),
                "scope": scope,
                "categories": _categories(incident),
            },
        ),
        (_("Items of the personal data leaked or that may have leaked"), incident.data_items),
        (
            _("Number of persons"),
            _(
                "%(persons)s persons (%(recordings)s recordings of %(calls)s calls in the scope; "
                "%(unprotected)s recordings were not protected by strong encryption, "
                "%(protected)s were)."
            )
            % {
                "persons": incident.unprotected_persons
                if incident.tested_at
                else incident.scoped_persons,
                "recordings": incident.scoped_recordings,
                "calls": incident.scoped_calls,
                "unprotected": incident.unprotected_recordings,
                "protected": incident.protected_recordings,
            },
        ),
        (
            _("Cause"),
            f"{incident.get_cause_display()}\n{incident.cause_detail}".strip(),
        ),
        (
            _("Whether there is secondary damage or a risk of it, and its nature"),
            incident.secondary_damage or _("None known at present."),
        ),
        (_("Status of the response to the persons"), _notification_status(incident)),
        (
            _("Status of publication"),
            _("Published on %(date)s.") % {"date": _date(incident.public_notice_published_at)}
            if incident.public_notice_published_at
            else _("Not published yet."),
        ),
        (
            _("Measures to prevent recurrence"),
            incident.recurrence_measures or _("Under consideration."),
        ),
        (_("Other matters for reference"), incident.other_notes or "—"),
    ]
    return {
        "report": report,
        "title": report_clock.label,
        "due": report_clock.due,
        "incident": incident,
        "organisation": org.legal_name_ja,
        "reportability": reportability(incident),
        "items": [
            {"number": number, "heading": heading, "text": text}
            for number, (heading, text) in enumerate(items, start=1)
        ],
    }


def as_text(report_draft):
    """The draft as plain text, for the download."""
    lines = [
        f"{report_draft['title']} — {report_draft['incident'].reference}",
        f"{_('Business')}: {report_draft['organisation'] or '—'}",
        f"{_('Due')}: {_date(report_draft['due'])}",
        "",
    ]
    for item in report_draft["items"]:
        lines += [f"({item['number']}) {item['heading']}", str(item["text"]), ""]
    return "\n".join(lines)
