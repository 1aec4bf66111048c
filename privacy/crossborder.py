"""The register of third parties in a foreign country (外国にある第三者, APPI art. 28).

Each recipient's measures are checked periodically (rule 18(1)(i)); every check is a row of
``CrossBorderCheck`` and an event on the audit trail. Staff are reminded by email once when a
check falls due within ``REMIND_DAYS_BEFORE`` days or is overdue. ``public_summary()`` is
what the public page shows and what answers a person's request under art. 28(3).
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from audit import services as audit
from audit.models import AccessEvent
from contactcenter.roles import require, staff_emails

from .models import CrossBorderCheck, CrossBorderRecipient

logger = logging.getLogger(__name__)

REMIND_DAYS_BEFORE = 30
RECORD_CHECK = "privacy.add_crossbordercheck"


def public_summary():
    """Every foreign recipient as the public page and a 28(3) answer state it.

    A list of dicts: recipient, country, services, basis (display text), measures (text),
    last_checked and next_check (dates, or None before the first check).
    """
    return [
        {
            "recipient": row.recipient,
            "country": row.country_ja,
            "services": row.services_ja,
            "basis": row.get_basis_display(),
            "measures": row.measures_ja,
            "country_regime": row.country_regime_ja,
            "last_checked": row.last_checked_on,
            "next_check": row.next_check_on,
        }
        for row in CrossBorderRecipient.objects.order_by("pk")
    ]


def record_check(*, recipient, by, checked_on, scope, result, note=""):
    """Record one check of ``recipient``'s measures and move its next check on.

    Guarantees: the check, the recipient's new dates and the audit event are written together
    or not at all; the last check date never moves back (an older check recorded late is
    kept, but does not postpone the next one). Only roles allowed to record checks may.
    """
    require(by, RECORD_CHECK, _("Your role does not allow recording checks of the register."))
    if checked_on > timezone.localdate():
        raise ValidationError(_("A check cannot be dated in the future."))
    if not scope.strip():
        raise ValidationError(_("Say what was checked."))
    if result not in CrossBorderCheck.Result.values:
        raise ValidationError(_("Choose the result of the check."))
    with transaction.atomic():
        locked = CrossBorderRecipient.objects.select_for_update().get(pk=recipient.pk)
        check = CrossBorderCheck.objects.create(
            recipient=locked,
            checked_on=checked_on,
            checked_by=by,
            scope=scope,
            result=result,
            note=note,
        )
        if locked.last_checked_on is None or checked_on > locked.last_checked_on:
            locked.last_checked_on = checked_on
            locked.save()
        audit.record(
            AccessEvent.Action.CROSS_BORDER_CHECK,
            actor=by,
            detail={
                "recipient": locked.recipient,
                "country": locked.country_ja,
                "checked_on": checked_on.isoformat(),
                "result": result,
                "next_check": locked.next_check_on.isoformat() if locked.next_check_on else None,
            },
        )
    recipient.refresh_from_db()
    return check


def due_recipients(*, today=None):
    """Recipients whose check is due within REMIND_DAYS_BEFORE days, overdue, or never made."""
    today = today or timezone.localdate()
    return CrossBorderRecipient.objects.filter(
        Q(next_check_on__isnull=True) | Q(next_check_on__lte=today + timedelta(REMIND_DAYS_BEFORE))
    )


def remind_due_checks(*, today=None):
    """Email supervisors and compliance officers about each check that falls due; once each.

    A recipient is claimed with a conditional UPDATE on the due date it is reminded of, so
    two runs at once send one email, and a recipient is reminded again only after a new check
    gives it a new due date. Returns the number of reminders sent.
    """
    today = today or timezone.localdate()
    sent = 0
    for row in due_recipients(today=today):
        due = row.next_check_on or today  # never checked: due now
        if row.reminded_for is not None and row.reminded_for >= due:
            continue
        claimed = (
            CrossBorderRecipient.objects.filter(pk=row.pk)
            .filter(Q(reminded_for__isnull=True) | Q(reminded_for__lt=due))
            .update(reminded_for=due)
        )
        if claimed != 1:
            continue
        recipients = staff_emails()
        if not recipients:
            continue
        with translation.override("ja"):
            overdue = due < today or row.next_check_on is None
            subject = (
                _("Overdue: the check of %(recipient)s (cross-border register)")
                if overdue
                else _("Due on %(due)s: the check of %(recipient)s (cross-border register)")
            ) % {"recipient": row.recipient, "due": due.isoformat()}
            body = _(
                "The measures of a recipient in a foreign country must be checked "
                "periodically (APPI art. 28, rule 18).\n\n"
                "Recipient: %(recipient)s\nCountry: %(country)s\nLast checked: %(last)s\n"
                "Next check due: %(due)s\n\nRecord the check in the admin: %(url)s"
            ) % {
                "recipient": row.recipient,
                "country": row.country_ja,
                "last": row.last_checked_on.isoformat() if row.last_checked_on else _("never"),
                "due": row.next_check_on.isoformat() if row.next_check_on else _("now"),
                "url": settings.PUBLIC_BASE_URL
                + reverse("admin:privacy_crossborderrecipient_check", args=[row.pk]),
            }
        try:
            send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients)
        except OSError:
            # Given back, so that the next run tries again.
            CrossBorderRecipient.objects.filter(pk=row.pk, reminded_for=due).update(
                reminded_for=row.reminded_for
            )
            logger.exception("Could not email staff about the check of %s", row.recipient)
            continue
        sent += 1
    return sent
