"""Retention: legal holds, purge when no purpose is left, and what a withdrawal of consent
or a customer's request takes away.

A purged recording loses its key first (crypto-shredding), then its file, and keeps a
tombstone that says what was deleted, when, why and by whom.
"""

from django.core.files.storage import storages
from django.db import transaction
from django.db.models import Min
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from audit import services as audit
from audit.models import AccessEvent
from consent import services as consent
from consent.models import ConsentRecord
from consent.services import may_record
from contactcenter.roles import require
from contactcenter.services import mark_card_data as mark_call_card_data

from .ingest import FETCH_TASK, delete_quietly, delete_twilio_copy
from .models import LegalHold, Recording, RecordingPurpose, Tombstone
from .outbox import enqueue

Status = Recording.Status
Action = AccessEvent.Action
MANAGE_HOLDS = "recordings.manage_legal_hold"
RECORD_CONSENT = "consent.add_consentrecord"


# --- holds ---------------------------------------------------------------------------------


def place_hold(recording, *, reason, by, request=None):
    """Hold ``recording`` against purge until released; only for who may manage holds
    (``NotAllowed`` otherwise, and nothing changes)."""
    require(by, MANAGE_HOLDS, _("Your role does not allow placing or releasing legal holds."))
    if not reason.strip():
        raise ValueError(_("Give the reason for the hold."))
    with transaction.atomic():
        hold = LegalHold.objects.create(recording=recording, reason=reason.strip(), placed_by=by)
        audit.record(
            Action.HOLD_PLACED,
            actor=by,
            recording=recording,
            detail={"hold": hold.pk, "reason": hold.reason},
            request=request,
        )
    return hold


def release_hold(hold, *, reason, by, request=None):
    """Release a hold; a recording past retention with no other hold is purged at once.
    Only for who may manage holds (``NotAllowed`` otherwise, and nothing changes)."""
    require(by, MANAGE_HOLDS, _("Your role does not allow placing or releasing legal holds."))
    if not reason.strip():
        raise ValueError(_("Give the reason for the release."))
    with transaction.atomic():
        released = LegalHold.objects.filter(pk=hold.pk, released_at__isnull=True).update(
            released_at=timezone.now(), released_by=by, release_reason=reason.strip()
        )
        if released:
            audit.record(
                Action.HOLD_RELEASED,
                actor=by,
                recording=hold.recording,
                detail={"hold": hold.pk, "reason": reason.strip()},
                request=request,
            )
    return purge_due(recording_ids=[hold.recording_id], by=by)


def purge_due(*, now=None, batch_size=500, dry_run=False, recording_ids=None, by=None):
    """Purge every stored recording past retention and not held; return how many.

    Works in batches claimed with ``SKIP LOCKED``, so memory stays flat and two workers never
    purge the same recording. Each loses its key (crypto-shredding) and gets a tombstone and
    its audit event in the batch's transaction; files and Twilio copies are deleted after it
    commits, with no transaction open. ``by`` is the person whose action caused the purge
    (releasing a hold, granting a customer's request), if any.

    Never inside another transaction (the batches are durable, so that is an error): the
    caller's transaction would hold its locks, the audit chain's among them, while the
    files are deleted and Twilio answers up to 500 DELETEs. A crash after a batch commits
    loses nothing: a file left behind cannot be read (its key is gone), and
    ``twilio_deleted_at`` stays empty until Twilio confirms, so the DELETEs are retried.
    """
    now = now or timezone.now()
    due = Recording.objects.due_for_purge(now)
    if recording_ids is not None:
        due = due.filter(pk__in=recording_ids)
    if dry_run:
        return due.count()
    purged = last_pk = 0
    while True:
        with transaction.atomic(durable=True):
            batch = list(
                # From where the last batch ended: the rows before it are purged or skipped.
                due.filter(pk__gt=last_pk)
                .select_for_update(skip_locked=True)
                .order_by("pk")
                .values(
                    "pk",
                    "sid",
                    "status",
                    "blob_name",
                    "plaintext_sha256",
                    "purge_requested",
                )[:batch_size]
            )
            if not batch:
                break
            ids = [row["pk"] for row in batch]
            last_pk = ids[-1]
            Recording.objects.filter(pk__in=ids).transition_all(
                to=Status.PURGED, wrapped_key=None, key_id="", updated_at=timezone.now()
            )
            Tombstone.objects.bulk_create(
                Tombstone(
                    recording_id=row["pk"],
                    reason=_purge_reason(row),
                    detail=str(PURGE_DETAILS[_purge_reason(row)]),
                    deleted_by=by,
                    deleted_by_system="" if by else "purge",
                    deleted_at=now,
                    # One that could not be fetched had no copy of ours, only Twilio's.
                    had_stored_copy=row["status"] == Status.STORED,
                    plaintext_sha256=row["plaintext_sha256"],
                )
                for row in batch
            )
            audit.record_many(
                [
                    {
                        "action": Action.PURGE,
                        "actor": by,
                        "actor_label": "" if by else "purge",
                        "recording": Recording(pk=row["pk"], sid=row["sid"]),
                        "detail": {"reason": _purge_reason(row)},
                    }
                    for row in batch
                ]
            )
        _delete_files(batch)
        purged += len(batch)
    confirm_twilio_deletions()
    return purged


# --- withdrawal of consent and customers' requests ------------------------------------------

PURGE_TASK = "recordings.tasks.purge_recordings"


# What a withdrawal reaches: what we keep, what Twilio still holds for us to fetch (being
# recorded, waiting, being fetched) and what we could not fetch.
WITHDRAWABLE = [Status.STORED, Status.IN_PROGRESS, Status.COMPLETED, Status.FETCH_FAILED]


def forget_without_consent(*, customer=None, operator=None, call=None):
    """A party took their consent back: the recordings it covered are purged at once, and
    none still at Twilio is ever kept. Return the ids of the recordings it marked.

    Runs in the transaction that writes the withdrawal to the ledger. Each recording of the
    affected calls that ``may_record`` no longer allows is locked and marked withdrawn:
    a stored one, or one we could not fetch, has its purpose windows closed and its purge is
    queued through the outbox (the purge deletes Twilio's copy too); one being recorded,
    waiting or being fetched is refused by its fetch, which checks the mark under the same
    lock when it commits, so a download running now ends with no copy here or at Twilio. A
    recording on legal hold is kept, unusable, until the hold is released.
    """
    recordings = Recording.objects.filter(
        status__in=WITHDRAWABLE, consent_withdrawn_at__isnull=True
    ).select_related("call__customer", "call__operator")
    if call is not None:
        recordings = recordings.filter(call=call)
    elif customer is not None:
        recordings = recordings.filter(call__customer=customer)
    elif operator is not None:
        recordings = recordings.filter(call__operator=operator)
    else:
        return []
    with transaction.atomic():  # the caller's, when it has one (the withdrawal's)
        return _mark_withdrawn(recordings)


def _mark_withdrawn(recordings):
    affected = [
        r
        for r in recordings.select_for_update(of=("self",)).order_by("pk")
        if not may_record(call=r.call)
    ]
    if not affected:
        return []
    now = timezone.now()
    due = [r.pk for r in affected if r.status in (Status.STORED, Status.FETCH_FAILED)]
    in_flight = [r.pk for r in affected if r.pk not in due]
    _close_windows(due, reason=Tombstone.Reason.CONSENT_WITHDRAWN, consent_withdrawn_at=now)
    Recording.objects.filter(pk__in=in_flight).update(
        consent_withdrawn_at=now, purge_requested=Tombstone.Reason.CONSENT_WITHDRAWN
    )
    if due:
        enqueue(PURGE_TASK, recording_ids=due)
    for r in affected:
        if r.status == Status.COMPLETED:
            # Its fetch refuses it and deletes Twilio's copy: run it now (idempotent: one
            # already downloading leaves this one nothing to do).
            enqueue(FETCH_TASK, recording_id=r.pk)
    return [r.pk for r in affected]


def _close_windows(ids, *, reason, **marks):
    """End every purpose window of the recordings ``ids`` now, so that they are due for purge
    with ``reason`` on their tombstone (a legal hold still keeps one, unusable)."""
    now = timezone.now()
    Recording.objects.filter(pk__in=ids).update(
        retain_until=now, purge_requested=reason, updated_at=now, **marks
    )
    RecordingPurpose.objects.filter(recording__in=ids, usable_until__gt=now).update(
        usable_until=now
    )


PURGE_DETAILS = {
    Tombstone.Reason.RETENTION: _("Every purpose window had closed."),
    Tombstone.Reason.CONSENT_WITHDRAWN: _("Consent was taken back."),
    Tombstone.Reason.CUSTOMER_REQUEST: _("The customer asked for it."),
    Tombstone.Reason.NO_CONSENT: _("There was no consent to recording."),
}


def _purge_reason(row):
    return row["purge_requested"] or Tombstone.Reason.RETENTION


def stop_using_on_request(recordings, *, reason=Tombstone.Reason.CUSTOMER_REQUEST):
    """A customer asked for deletion or suspension of use: close every purpose window of
    ``recordings`` now, in the caller's transaction (the decision's), so that once it
    commits none of them can be played. Return ``(due, held)``: the recordings now due for
    purge, and those a legal hold keeps, unusable, until it is released.

    The purge deletes files and Twilio's copies, so the caller runs it once the decision
    has committed: ``purge_due(recording_ids=[r.pk for r in due], by=…)``. Should that
    never happen (a crash), the hourly purge finds them due all the same.
    """
    stored = [recording for recording in recordings if recording.status == Status.STORED]
    ids = [recording.pk for recording in stored]
    _close_windows(ids, reason=reason)
    free = set(Recording.objects.filter(pk__in=ids).not_on_hold().values_list("pk", flat=True))
    return (
        [recording for recording in stored if recording.pk in free],
        [recording for recording in stored if recording.pk not in free],
    )


def mark_card_data(recording, *, by, note):
    """Mark ``recording`` (its call) as possibly holding a card number: every purpose window
    ends with the shortest one, and the recording is kept no longer than that. Only for who
    may change recordings (``NotAllowed`` otherwise)."""
    require(by, "recordings.change_recording", _("Your role does not allow changing recordings."))
    mark_call_card_data(call=recording.call, by=by, note=note)
    with transaction.atomic():
        windows = RecordingPurpose.objects.filter(recording=recording)
        shortest = windows.aggregate(shortest=Min("usable_until"))["shortest"]
        if shortest is not None:
            windows.filter(usable_until__gt=shortest).update(usable_until=shortest)
            Recording.objects.filter(pk=recording.pk, retain_until__gt=shortest).update(
                retain_until=shortest, updated_at=timezone.now()
            )
    recording.refresh_from_db()
    return recording


def seal(recordings, *, by, reason):
    """Stop every use of ``recordings`` while keeping them (利用停止, APPI art. 35): once
    sealed, none can be played by staff, reviewed or marked for training, or provided to a
    third party; each stays until its retention ends or the customer asks for its deletion
    (a seal does not purge). Return how many were sealed now (one already sealed keeps its
    first seal).

    Runs in the caller's transaction (the decision on the customer's request), which
    records the decision and the recordings it sealed in its own audit event.
    """
    if not (reason or "").strip():
        raise ValueError(_("Give the reason use is stopped."))
    ids = [recording.pk for recording in recordings]
    now = timezone.now()
    with transaction.atomic():
        return Recording.objects.filter(
            pk__in=ids, sealed_at__isnull=True, status__in=WITHDRAWABLE
        ).update(sealed_at=now, sealed_reason=reason.strip(), sealed_by=by, updated_at=now)


def withdraw_consent(*, customer=None, operator=None, by=None, method=None, note="", at=None):
    """Write a withdrawal of consent to the ledger (a customer's, or an operator's) and stop
    using what it covered, in one transaction: once it commits, none of the recordings it
    covered can be played, and their purge is queued. Staff (``by``) record it only if their
    role may add to the consent ledger (``NotAllowed`` otherwise); ``by=None`` is the person
    themself."""
    if (customer is None) == (operator is None):
        raise ValueError("withdraw_consent needs exactly one of customer and operator")
    if by is not None:
        require(by, RECORD_CONSENT, _("Your role does not allow recording consent."))
    with transaction.atomic():
        if customer is not None:
            options = {"method": method} if method else {}
            record = consent.withdraw_consent(customer=customer, by=by, note=note, at=at, **options)
        else:
            record = consent.record_consent(
                operator=operator,
                party_role=ConsentRecord.PartyRole.OPERATOR,
                decision=ConsentRecord.Decision.WITHDRAWN,
                method=method or ConsentRecord.Method.WEB_FORM,
                recorded_by=by,
                note=note,
                at=at,
            )
        forget_without_consent(customer=customer, operator=operator)
    return record


def _delete_files(rows):
    storage = storages["recordings"]
    for row in rows:
        if row["blob_name"]:
            delete_quietly(storage, row["blob_name"])
    Recording.objects.filter(pk__in=[row["pk"] for row in rows]).update(blob_name="")


def confirm_twilio_deletions(limit=500):
    """Retry deleting Twilio's copies that are ours no longer (stored, refused or purged).

    The last resort after the deletion's own task has given up: a failure here waits for
    the next run, instead of queueing one task per recording every hour."""
    pending = Recording.objects.filter(
        twilio_deleted_at__isnull=True,
        status__in=[Status.STORED, Status.REFUSED, Status.PURGED],
    ).order_by("pk")[:limit]
    return sum(delete_twilio_copy(recording, retry_later=False) for recording in pending)
