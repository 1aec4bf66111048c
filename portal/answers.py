"""What we answer to the requests that are about the person rather than a call: the purposes
of use (APPI art. 32(2)), the measures of the recipients in a foreign country (28(3)) and the
records of provision to third parties (33(5)).

Each answer is written from what the system holds at the moment of the decision (the notice
in force, the cross-border register, the provision ledger), so it cannot differ from what the
public page says or what was actually done. The text goes into the written decision in full;
the SMS and the voice call say the gist and point to it.
"""

from django.conf import settings
from django.urls import reverse
from django.utils.translation import gettext as _

from privacy import crossborder
from privacy.services import notice_in_force
from recordings import provision


def purposes():
    """The purposes of the person's recordings: those of the notice in force, each with how
    long a recording may be used for it, and where every version of the notice is kept."""
    notice = notice_in_force()
    if notice is None:
        return _("No notice of the purposes of use is in force.")
    lines = [
        _("The purposes for which we record calls and use the recordings (notice %(version)s):")
        % {"version": notice}
    ]
    for purpose in notice.purposes.order_by("pk"):
        lines.append(
            _("- %(name)s: %(description)s (used for up to %(days)d days after the call)")
            % {
                "name": purpose.name,
                "description": purpose.description,
                "days": purpose.retention_days,
            }
        )
    lines.append(
        _("Every version of the notice: %(url)s")
        % {"url": settings.PUBLIC_BASE_URL + reverse("privacy:notice-list")}
    )
    return "\n".join(lines)


def cross_border():
    """The register of third parties in a foreign country, as the public page states it."""
    rows = crossborder.public_summary()
    if not rows:
        return _("We provide no personal data to a third party in a foreign country.")
    lines = [_("The third parties in a foreign country that handle your data:")]
    for row in rows:
        lines.append(
            _(
                "- %(recipient)s (%(country)s): %(services)s. Basis: %(basis)s. Measures: "
                "%(measures)s. Last checked: %(last)s; next check: %(next)s."
            )
            % {
                "recipient": row["recipient"],
                "country": row["country"],
                "services": row["services"],
                "basis": row["basis"],
                "measures": row["measures"],
                "last": row["last_checked"] or _("not checked yet"),
                "next": row["next_check"] or "—",
            }
        )
        if row.get("country_regime"):
            lines.append("  " + row["country_regime"])
    return "\n".join(lines)


def provision_records(phone_number):
    """The records of provision to third parties about the holder of ``phone_number``,
    newest first (arts. 29/30 records, disclosed under 33(5))."""
    records = list(provision.records_about(phone_number))
    if not records:
        return _("We have no record of providing your data to a third party."), 0
    lines = [_("Our records of providing your data to third parties, newest first:")]
    for record in records:
        summary = record.summary_ja()
        lines.append(
            _("- %(date)s: to %(recipient)s (%(kind)s); what: %(items)s; basis: %(basis)s")
            % {
                "date": summary["date"],
                "recipient": summary["recipient"],
                "kind": summary["recipient_kind"],
                "items": "、".join(summary["items"]),
                "basis": summary["basis"]
                + (f" ({summary['ground']})" if summary.get("ground") else ""),
            }
        )
    return "\n".join(lines), len(records)
