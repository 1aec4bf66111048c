"""Recording and changing incidents, marking reports submitted, publishing the public notice.

Each service checks who may act (``MANAGE``: compliance officers), writes its rows and its
audit event in one transaction, and raises ``NotAllowed`` or ``ValidationError`` otherwise.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.forms.models import model_to_dict
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from audit import services as audit
from audit.models import AccessEvent
from contactcenter.roles import require
from recordings import outbox

from . import encryption, scoping
from .models import Incident

MANAGE = "incidents.change_incident"
RECORD = "incidents.add_incident"
VIEW = "incidents.view_incident"
REPORTS = {"preliminary", "final"}


def _next_reference(year):
    prefix = f"INC-{year}-"
    last = (
        Incident.objects.filter(reference__startswith=prefix)
        .order_by("-reference")
        .values_list("reference", flat=True)
        .first()
    )
    number = int(last.rsplit("-", 1)[1]) + 1 if last else 1
    return f"{prefix}{number:04d}"


def record_incident(*, incident, by, request=None):
    """Save a new ``incident`` (unsaved, validated) with the next reference of its year."""
    require(by, RECORD, _("Only compliance officers record incidents."))
    incident.full_clean(exclude=["reference"])
    year = timezone.localtime(incident.became_known_at).year
    for _attempt in range(5):
        incident.reference = _next_reference(year)
        try:
            with transaction.atomic():
                incident.created_by = by
                incident.save()
                audit.record(
                    AccessEvent.Action.INCIDENT_RECORDED,
                    actor=by,
                    request=request,
                    detail={"incident": incident.reference, "title": incident.title},
                )
            return incident
        except IntegrityError:  # another incident took the same reference at the same time
            incident.pk = None
    raise ValidationError(_("Could not give the incident a reference; try again."))


def change_incident(*, incident, by, changed_fields, request=None):
    """Save the changes to ``incident`` (validated) with an audit event naming the fields."""
    require(by, MANAGE, _("Only compliance officers change incidents."))
    incident.full_clean(exclude=["reference"])
    with transaction.atomic():
        incident.save()
        values = model_to_dict(incident, fields=changed_fields)
        audit.record(
            AccessEvent.Action.INCIDENT_CHANGED,
            actor=by,
            request=request,
            detail={
                "incident": incident.reference,
                "fields": sorted(changed_fields),
                "values": {name: str(value) for name, value in values.items()},
            },
        )
    return incident


def mark_submitted(*, incident, report, by, at=None, request=None):
    """Record that the 速報 or 確報 was submitted to the PPC, when and by whom (once)."""
    require(by, MANAGE, _("Only compliance officers mark reports as submitted."))
    if report not in REPORTS:
        raise ValidationError(_("Unknown report."))
    at = at or timezone.now()
    if at > timezone.now() + timezone.timedelta(minutes=5):
        raise ValidationError(_("A report cannot be submitted in the future."))
    if at < incident.became_known_at:
        raise ValidationError(_("A report cannot be submitted before the breach became known."))
    with transaction.atomic():
        updated = Incident.objects.filter(
            pk=incident.pk, **{f"{report}_submitted_at__isnull": True}
        ).update(**{f"{report}_submitted_at": at, f"{report}_submitted_by": by})
        if updated != 1:
            raise ValidationError(_("This report was already marked as submitted."))
        audit.record(
            AccessEvent.Action.INCIDENT_REPORTED,
            actor=by,
            request=request,
            detail={"incident": incident.reference, "report": report, "at": at.isoformat()},
        )
    incident.refresh_from_db()
    return incident


def publish_notice(*, incident, by, request=None):
    """Publish the incident's public notice at ``/incidents/<reference>/notice/``."""
    require(by, MANAGE, _("Only compliance officers publish the public notice."))
    if not incident.public_notice_text.strip():
        raise ValidationError(_("Write the public notice (Japanese) before publishing it."))
    with transaction.atomic():
        Incident.objects.filter(pk=incident.pk).update(public_notice_published_at=timezone.now())
        audit.record(
            AccessEvent.Action.INCIDENT_NOTIFIED,
            actor=by,
            request=request,
            detail={"incident": incident.reference, "channel": "public", "step": "published"},
        )
    incident.refresh_from_db()
    return incident


# --- the workflow's steps: at once when small, in the worker otherwise ------------------------


def scope(*, incident, by):
    """Scope ``incident`` afresh; return ``(incident, done)``: scoped at once when its scope
    holds at most ``INCIDENT_SCOPE_INLINE_LIMIT`` recordings, else queued for the worker
    (the incident's page shows the progress)."""
    require(by, MANAGE, _("Only compliance officers manage incidents."))
    if incident.scope_state == Incident.ScopeState.RUNNING and incident.scope_progress:
        raise ValidationError(_("Scoping is already running."))
    scoping.start_scoping(incident=incident, by=by)
    if scoping.small_enough_to_run_now(incident, settings.INCIDENT_SCOPE_INLINE_LIMIT):
        return scoping.run_scoping(incident.pk), True
    with transaction.atomic():
        outbox.enqueue("incidents.tasks.scope_incident", incident_id=incident.pk)
    return incident, False


def test_encryption(*, incident, by):
    """Run the strong-encryption test over ``incident``'s scope; return ``(incident, done)``
    as ``scope`` does. Only a scoped incident can be tested."""
    require(by, MANAGE, _("Only compliance officers manage incidents."))
    if incident.scope_state != Incident.ScopeState.DONE:
        raise ValidationError(_("Scope the incident first."))
    if incident.scoped_recordings <= settings.INCIDENT_SCOPE_INLINE_LIMIT:
        return encryption.run_encryption_test(incident.pk, by=by), True
    with transaction.atomic():
        outbox.enqueue("incidents.tasks.test_encryption", incident_id=incident.pk, by_id=by.pk)
    return incident, False


def send_notifications(*, incident, by):
    """Queue the notification of every person whose recording was not protected (the worker
    sends them, each once). Refused before the encryption test, or when nobody is affected."""
    require(by, MANAGE, _("Only compliance officers manage incidents."))
    if incident.tested_at is None or incident.unprotected_recordings == 0:
        raise ValidationError(_("Nobody needs to be told: run the encryption test first."))
    with transaction.atomic():
        outbox.enqueue("incidents.tasks.send_notifications", incident_id=incident.pk, by_id=by.pk)
