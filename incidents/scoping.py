"""Which recordings, calls and numbers an incident's scope covers, counted from the system.

The scope's recordings are copied into ``AffectedRecording`` in keyset batches (by recording
id, ``BATCH`` rows per INSERT, conflicts ignored): the tables reach ten million rows, so no
OFFSET and no row-by-row work; an interrupted run continues from the last batch it stored
(``scope_last_recording``), and the incident page shows that progress. The counts are taken
once at the end (aggregates over this incident's rows, on its index) and stored on the
incident, so the pages that show them run no count.
"""

from django.db import transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from audit import services as audit
from audit.models import AccessEvent
from contactcenter.models import Call
from recordings.models import Recording

from .models import AffectedRecording, Incident

BATCH = 2000
MANY_PERSONS = 1000  # rule 7 (4): more than 1,000 persons


def _window(incident):
    """The period the scope covers: the scope's own dates, else when it occurred, else up to
    when it became known."""
    end = incident.scope_to or incident.occurred_to or incident.became_known_at
    start = incident.scope_from or incident.occurred_from
    return start, end


def recordings_in_scope(incident):
    """The recordings the scope covers, as a queryset (not evaluated)."""
    kind = Incident.ScopeKind
    start, end = _window(incident)
    recordings = Recording.objects.all()
    if incident.scope_kind == kind.STORAGE:
        # Every recording with a stored copy at the time: stored before its end and not
        # purged before its start (a purged one is still counted: its tombstone shows its key
        # was destroyed, which the encryption test records).
        recordings = recordings.filter(stored_at__isnull=False, stored_at__lt=end)
        if start is not None:
            recordings = recordings.filter(
                Q(tombstone__isnull=True) | Q(tombstone__deleted_at__gte=start)
            )
    elif incident.scope_kind == kind.PERIOD:
        recordings = recordings.filter(call__started_at__gte=start, call__started_at__lt=end)
    elif incident.scope_kind == kind.ACCOUNT:
        condition = Q()
        if incident.scope_user_id:
            accessed = AccessEvent.objects.filter(
                actor_id=incident.scope_user_id, recording_id__isnull=False
            )
            if incident.scope_from:
                accessed = accessed.filter(occurred_at__gte=incident.scope_from)
            if incident.scope_to:
                accessed = accessed.filter(occurred_at__lt=incident.scope_to)
            condition |= Q(pk__in=accessed.values("recording_id"))
        if incident.scope_operator_id:
            handled = Q(call__operator_id=incident.scope_operator_id)
            if incident.scope_from:
                handled &= Q(call__started_at__gte=incident.scope_from)
            if incident.scope_to:
                handled &= Q(call__started_at__lt=incident.scope_to)
            condition |= handled
        recordings = recordings.filter(condition) if condition else recordings.none()
    elif incident.scope_kind == kind.MASTER_KEY:
        recordings = recordings.filter(key_id__in=incident.affected_key_ids or [""])
    return recordings


def start_scoping(*, incident, by):
    """Mark ``incident`` as being scoped afresh; the rows are written by ``run_scoping``."""
    with transaction.atomic():
        Incident.objects.filter(pk=incident.pk).update(
            scope_state=Incident.ScopeState.RUNNING,
            scope_started_at=timezone.now(),
            scope_progress=0,
            scope_last_recording=0,
            tested_at=None,
        )
        audit.record(
            AccessEvent.Action.INCIDENT_SCOPED,
            actor=by,
            detail={"incident": incident.reference, "step": "started", "kind": incident.scope_kind},
        )
    incident.refresh_from_db()


def small_enough_to_run_now(incident, limit):
    """Whether the scope holds at most ``limit`` recordings (a bounded count)."""
    return recordings_in_scope(incident).values("pk")[: limit + 1].count() <= limit


def run_scoping(incident_id, *, batch=BATCH):
    """Write the scope's recordings in keyset batches, then count; idempotent and resumable.

    Returns the incident, or None if it is not being scoped (a second run does nothing)."""
    incident = Incident.objects.filter(pk=incident_id).first()
    if incident is None or incident.scope_state != Incident.ScopeState.RUNNING:
        return None
    if incident.scope_last_recording == 0:
        AffectedRecording.objects.filter(incident=incident).delete()
    last = incident.scope_last_recording
    recordings = recordings_in_scope(incident)
    while True:
        rows = list(
            recordings.filter(pk__gt=last)
            .order_by("pk")
            .values_list("pk", "call_id", "call__customer_id")[:batch]
        )
        if not rows:
            break
        with transaction.atomic():
            AffectedRecording.objects.bulk_create(
                [
                    AffectedRecording(
                        incident=incident, recording_id=pk, call_id=call_id, customer_id=customer
                    )
                    for pk, call_id, customer in rows
                ],
                ignore_conflicts=True,
            )
            last = rows[-1][0]
            Incident.objects.filter(pk=incident.pk).update(
                scope_last_recording=last, scope_progress=F("scope_progress") + len(rows)
            )
    return _finish_scoping(incident)


def _finish_scoping(incident):
    # A one-off aggregate over this incident's rows (its (incident, customer) index), when the
    # scoping ends; the page reads the stored numbers.
    counts = AffectedRecording.objects.filter(incident=incident).aggregate(
        recordings=Count("pk"),
        calls=Count("call_id", distinct=True),
        persons=Count("customer_id", distinct=True),
    )
    # Calls marked 「カード情報を含む可能性」 are few (a partial index): a card number on a
    # leaked recording makes the leak reportable whatever the count (rule 7 (2)).
    counts["card_data"] = AffectedRecording.objects.filter(
        incident=incident,
        call_id__in=Call.objects.filter(card_data_suspected_at__isnull=False).values("pk"),
    ).count()
    with transaction.atomic():
        Incident.objects.filter(pk=incident.pk).update(
            scope_state=Incident.ScopeState.DONE,
            scoped_at=timezone.now(),
            scoped_recordings=counts["recordings"],
            scope_progress=counts["recordings"],
            scoped_calls=counts["calls"],
            scoped_persons=counts["persons"],
            category_many_counted=counts["persons"] > MANY_PERSONS,
            scoped_card_data_recordings=counts["card_data"],
            category_financial_counted=counts["card_data"] > 0,
            tested_at=None,
            protected_recordings=0,
            unprotected_recordings=0,
            unprotected_persons=0,
        )
        audit.record(
            AccessEvent.Action.INCIDENT_SCOPED,
            actor_label="incident scoping",
            detail={"incident": incident.reference, "step": "done", **counts},
        )
    incident.refresh_from_db()
    return incident
