"""Telling the affected persons (PPC rule 10): an SMS to a mobile, a voice call to a landline,
and the public notice as the substitute where neither is possible (a withheld number, a send
that failed).

Only the persons of recordings that were not protected are told. ``prepare`` writes one
``IncidentNotification`` per person (unique per incident and customer, conflicts ignored), so
preparing and sending again is harmless; ``send`` claims each waiting row with a conditional
UPDATE before calling Twilio, and records its SID or error. A row left ``sending`` by a
killed worker is not sent again (it may have gone out): the page shows it.
"""

from django.conf import settings
from django.db.models import Count, Q
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from twilio.twiml.voice_response import VoiceResponse

import twilio_client
from audit import services as audit
from audit.models import AccessEvent
from privacy import organisation

from .models import AffectedRecording, Incident, IncidentNotification

BATCH = 500
MOBILE_PREFIXES = ("+8170", "+8180", "+8190")
Channel = IncidentNotification.Channel
Status = IncidentNotification.Status


def channel_for(phone_number):
    if not phone_number:
        return Channel.PUBLIC
    if phone_number.startswith(MOBILE_PREFIXES):
        return Channel.SMS
    return Channel.VOICE


def _unprotected(incident):
    return AffectedRecording.objects.filter(
        incident=incident, result=AffectedRecording.Result.NOT_PROTECTED
    )


def plan(incident):
    """How many persons each channel would reach (one aggregate over the incident's rows)."""
    mobile = Q()
    for prefix in MOBILE_PREFIXES:
        mobile |= Q(customer__phone_number__startswith=prefix)
    withheld = Q(customer__phone_number__isnull=True) | Q(customer_id__isnull=True)
    counts = _unprotected(incident).aggregate(
        sms=Count("customer_id", filter=mobile, distinct=True),
        voice=Count("customer_id", filter=~mobile & ~withheld, distinct=True),
        public=Count("customer_id", filter=withheld, distinct=True),
    )
    done = incident.notifications.aggregate(
        sent=Count("pk", filter=Q(status=Status.SENT)),
        failed=Count("pk", filter=Q(status=Status.FAILED)),
        public=Count("pk", filter=Q(status=Status.PUBLIC)),
        waiting=Count("pk", filter=Q(status__in=[Status.PENDING, Status.SENDING])),
    )
    return {**counts, "done": done}


def prepare(incident):
    """One notification row per person not protected; returns how many were added."""
    added = 0
    last = 0
    while True:
        people = list(
            _unprotected(incident)
            .filter(customer_id__gt=last)
            .order_by("customer_id")
            .values_list("customer_id", "customer__phone_number")
            .distinct()[:BATCH]
        )
        if not people:
            return added
        rows = []
        for customer_id, number in people:
            channel = channel_for(number)
            rows.append(
                IncidentNotification(
                    incident=incident,
                    customer_id=customer_id,
                    phone_number=number or "",
                    channel=channel,
                    status=Status.PUBLIC if channel == Channel.PUBLIC else Status.PENDING,
                )
            )
        created = IncidentNotification.objects.bulk_create(rows, ignore_conflicts=True)
        added += len(created)
        last = people[-1][0]


def notice_url(incident):
    return settings.PUBLIC_BASE_URL + reverse("incidents:notice", args=[incident.reference])


def message(incident):
    """The words an affected person reads or hears, in Japanese (nothing about the call)."""
    org = organisation.current()
    with translation.override("ja"):
        text = _(
            "%(organisation)s: personal data including a recording of your call may have been "
            "leaked (%(reference)s). We apologise."
        ) % {
            "organisation": org.legal_name_ja or _("Our contact center"),
            "reference": incident.reference,
        }
        if incident.public_notice_published_at:
            text += " " + _("Details: %(url)s") % {"url": notice_url(incident)}
        if org.complaint_phone:
            text += " " + _("Enquiries: %(phone)s") % {"phone": org.complaint_phone}
    return text


def twiml(text):
    """The voice call: the message read twice in Japanese."""
    response = VoiceResponse()
    response.say(text, language="ja-JP")
    response.pause(length=1)
    response.say(text, language="ja-JP")
    return str(response)


def _send_one(notification, text):
    claimed = IncidentNotification.objects.filter(pk=notification.pk, status=Status.PENDING).update(
        status=Status.SENDING
    )
    if claimed != 1:
        return None
    try:
        if notification.channel == Channel.SMS:
            sid = twilio_client.send_sms(to=notification.phone_number, body=text)
        else:
            sid = twilio_client.place_call(to=notification.phone_number, twiml=twiml(text))
    except twilio_client.TwilioError as error:
        IncidentNotification.objects.filter(pk=notification.pk).update(
            status=Status.FAILED, error=str(error.message)
        )
        return Status.FAILED
    IncidentNotification.objects.filter(pk=notification.pk).update(
        status=Status.SENT, twilio_sid=sid, sent_at=timezone.now(), error=""
    )
    return Status.SENT


def send(incident_id, *, by_id=None):
    """Prepare and send every waiting notification of the incident; idempotent.

    Twilio is called outside any transaction, one person at a time; each result is written
    as soon as Twilio answers. Returns the counts of this run."""
    incident = Incident.objects.get(pk=incident_id)
    prepare(incident)
    text = message(incident)
    counts = {"sent": 0, "failed": 0}
    last = 0
    while True:
        batch = list(
            incident.notifications.filter(status=Status.PENDING, pk__gt=last).order_by("pk")[:BATCH]
        )
        if not batch:
            break
        for notification in batch:
            outcome = _send_one(notification, text)
            if outcome == Status.SENT:
                counts["sent"] += 1
            elif outcome == Status.FAILED:
                counts["failed"] += 1
        last = batch[-1].pk
    audit.record(
        AccessEvent.Action.INCIDENT_NOTIFIED,
        actor=_user(by_id),
        actor_label="" if by_id else "incident notification",
        detail={"incident": incident.reference, **counts},
    )
    return counts


def _user(user_id):
    if user_id is None:
        return None
    from django.contrib.auth import get_user_model

    return get_user_model().objects.filter(pk=user_id).first()
