"""Which of a number's calls the person who proved it may see: the guard against recycled numbers.

Japanese mobile numbers are issued again after their holder gives them up. Proving that you
hold a number *today* says nothing about who held it when a past call was made, so the portal
never lists a number's calls just because the number was proven. The caller also proves a link
to each call:

* **When they called.** The caller gives the day and the approximate time of the call; the
  portal shows that number's calls within ``PORTAL_CALL_TIME_WINDOW_MINUTES`` (90) before or
  after it, and nothing else. Each look-up is counted: ``PORTAL_CALL_LOOKUPS`` (10) per proof
  of the number, and the proofs themselves are limited (3 per 15 minutes, 10 a day), so the
  calls of a number cannot be swept hour by hour.
* **How long ago.** A call made more than ``PORTAL_CALL_MAX_AGE_DAYS`` (90) days before the
  look-up may have been made by an earlier holder of the number (operators re-issue a number
  only months after it was given up). Such a call is shown only as "to be confirmed": a request
  for it is made, but staff confirm with the person that the call was theirs before they act
  (the queue shows it, ``needs_holder_check``).

The calls found stay with the browser's session, for this proof of this number only.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _

from contactcenter.models import Call

SESSION_KEY = "portal_claimed_calls"
SHOWN_PER_LOOKUP = 5


@dataclass
class Lookup:
    found: list
    message: str = ""


def _claims(session, number):
    claims = session.get(SESSION_KEY) or {}
    if claims.get("number") != number:
        claims = {"number": number, "ids": [], "lookups": 0}
    return claims


def lookups_left(session, number):
    return max(0, settings.PORTAL_CALL_LOOKUPS - _claims(session, number)["lookups"])


def oldest_without_check(now=None):
    """Calls started before this instant need staff to confirm they were the holder's."""
    return (now or timezone.now()) - timedelta(days=settings.PORTAL_CALL_MAX_AGE_DAYS)


def find(session, number, *, day, at):
    """The number's calls around ``day`` ``at`` (a local date and time), added to the calls
    this session may see; one of the session's look-ups is used."""
    claims = _claims(session, number)
    if claims["lookups"] >= settings.PORTAL_CALL_LOOKUPS:
        return Lookup([], _("You have looked up calls too many times. Prove your number again."))
    claims["lookups"] += 1
    moment = datetime.combine(day, at, tzinfo=timezone.get_current_timezone())
    window = timedelta(minutes=settings.PORTAL_CALL_TIME_WINDOW_MINUTES)
    found = list(
        Call.objects.filter(
            customer__phone_number=number,
            started_at__gte=moment - window,
            started_at__lte=moment + window,
        )
        .order_by("-started_at")
        .values_list("pk", flat=True)[:SHOWN_PER_LOOKUP]
    )
    claims["ids"] = sorted(set(claims["ids"]) | set(found))
    session[SESSION_KEY] = claims
    if not found:
        return Lookup([], _("We found no call from this number at that time."))
    return Lookup(found)


def claimed_calls(session, number):
    """The calls this session found for ``number``, newest first, with their recordings."""
    ids = _claims(session, number)["ids"]
    if not ids:
        return []
    return list(
        Call.objects.filter(pk__in=ids, customer__phone_number=number)
        .prefetch_related("recordings")
        .order_by("-started_at")
    )


def needs_holder_check(call, *, at=None):
    """Was ``call`` made so long before ``at`` that an earlier holder may have made it?"""
    return call.started_at < oldest_without_check(at)


def request_needs_holder_check(customer_request):
    """Is one of the request's calls older than the age an earlier holder's call may have?
    Staff confirm with the person that the call was theirs before they act."""
    since = oldest_without_check(customer_request.created_at)
    return customer_request.calls.filter(started_at__lt=since).exists()
