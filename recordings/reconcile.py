"""Reconciliation with Twilio: what Twilio holds, brought in line with what we know.

Twilio retries a callback we answered with an error, but not for ever, and not at all when
the request never reached us. Every 15 minutes (beat, or ``manage.py reconcile_twilio``)
Twilio's lists of recordings and calls are read and compared with ours:

* a completed recording we do not know is created, on its call (registered from Twilio's
  call resource if that is unknown too), and goes through the consent gate like one told by
  a callback: its fetch is queued, or, without consent, it is refused (tombstone) and
  deleted at Twilio at once — never left at Twilio;
* one we know as in progress, or as completed with no fetch queued, gets its fetch queued;
* one we stored, refused or purged that Twilio still holds has its deletion retried;
* a call we still think open that Twilio has ended is closed with Twilio's status, times
  and duration, and its operator made available again.

Every change goes through the same services and state transitions as the callbacks, so a
callback arriving late, or a second run, changes nothing more. Each run is a
``ReconciliationRun``: what it saw and did, or why it failed.
"""

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

import twilio_client
from consent.services import may_record
from contactcenter.calls import close_call, register_twilio_call
from contactcenter.models import Call

from . import ingest
from .models import OutboxMessage, ReconciliationRun, Recording
from .outbox import enqueue

logger = logging.getLogger(__name__)

Status = Recording.Status
# Every run reads at least this far back: a recording is listed by when it started, and
# one still running at the last run (a long call) must be seen once it has completed.
LOOKBACK = timedelta(hours=24)
# After a run with errors the next ones read back to the last clean run (minus a margin for
# clocks and for recordings being written at that moment), but never further than this.
MARGIN = timedelta(minutes=30)
MAX_LOOKBACK = timedelta(days=7)
# A fetch queued or started this recently is taken as on its way, not lost.
RECENTLY_QUEUED = timedelta(minutes=15)
BATCH = 500
OPEN_CALL_STATUSES = sorted(set(Call.Status.values) - Call.FINAL_STATUSES)
# Twilio's recording status → ours; the others (in-progress, paused, stopped, processing)
# are still being made at Twilio and are looked at again by the next run.
TWILIO_RECORDING_STATUSES = {
    "completed": Status.COMPLETED,
    "absent": Status.ABSENT,
    "failed": Status.FAILED,
}
# A call whose recording Twilio made (or found silent) was recording (or not recorded): what
# its lost in-progress (or absent) callback would have told, unless the operator moved it.
CALL_RECORDING_STATES = {
    Status.COMPLETED: Call.RecordingState.RECORDING,
    Status.ABSENT: Call.RecordingState.NOT_RECORDED,
}
# Ours, when Twilio still holding a copy means its deletion failed or was never made.
NO_COPY_AT_TWILIO = {Status.STORED, Status.REFUSED, Status.PURGED}


@dataclass
class _Tally:
    recordings_seen: int = 0
    calls_seen: int = 0
    created: int = 0
    queued: int = 0
    deleted_at_twilio: int = 0
    calls_closed: int = 0
    problems: list = field(default_factory=list)

    def counts(self):
        return {
            "recordings_seen": self.recordings_seen,
            "calls_seen": self.calls_seen,
            "created": self.created,
            "queued": self.queued,
            "deleted_at_twilio": self.deleted_at_twilio,
            "calls_closed": self.calls_closed,
            "errors": len(self.problems),
            "error_text": "\n".join(self.problems)[:10_000],
        }


def default_since(*, now):
    """Where a run starts reading Twilio's lists: ``LOOKBACK`` back, or further back to the
    last run that finished without errors (less ``MARGIN``), but at most ``MAX_LOOKBACK``."""
    since = now - LOOKBACK
    clean = (
        ReconciliationRun.objects.filter(status=ReconciliationRun.Status.SUCCEEDED, errors=0)
        .order_by("-started_at")
        .first()
    )
    if clean is not None:
        since = min(since, clean.started_at - MARGIN)
    return max(since, now - MAX_LOOKBACK)


def reconcile(*, since=None, now=None):
    """Bring our recordings and calls in line with Twilio's since ``since``; return the run.

    Twilio's lists are read whole before anything changes, so a Twilio that cannot be
    reached, or fails part-way, changes nothing: the run is recorded as failed with the
    reason, and no exception escapes (beat runs this). One recording or call that cannot be
    reconciled is counted as an error and the others go on.
    """
    now = now or timezone.now()
    since = since or default_since(now=now)
    run = ReconciliationRun.objects.create(started_at=now, since=since)
    tally = _Tally()
    try:
        at_twilio = twilio_client.list_recordings(created_after=since)
        calls_at_twilio = {
            call["sid"]: call for call in twilio_client.list_calls(started_after=since)
        }
        _reconcile_recordings(at_twilio, calls_at_twilio, tally, now=now)
        _close_open_calls(calls_at_twilio, tally)
    except Exception as error:  # Twilio down, or our database: recorded, never raised to beat
        reason = getattr(error, "message", None) or f"{type(error).__name__}: {error}"
        logger.error("Reconciliation with Twilio failed: %s", reason)
        _finish(run, ReconciliationRun.Status.FAILED, tally, extra_error=str(reason))
        return run
    _finish(run, ReconciliationRun.Status.SUCCEEDED, tally)
    logger.info(
        "Reconciliation with Twilio since %s: %s recording(s) and %s call(s) seen, %s created, "
        "%s queued, %s deleted at Twilio, %s call(s) closed, %s error(s)",
        since.isoformat(),
        run.recordings_seen,
        run.calls_seen,
        run.created,
        run.queued,
        run.deleted_at_twilio,
        run.calls_closed,
        run.errors,
    )
    return run


def _finish(run, status, tally, *, extra_error=""):
    fields = tally.counts()
    if extra_error:
        fields["errors"] += 1
        fields["error_text"] = "\n".join(filter(None, [extra_error, fields["error_text"]]))
    ReconciliationRun.objects.filter(pk=run.pk).update(
        status=status, finished_at=timezone.now(), **fields
    )
    run.refresh_from_db()


# --- recordings ----------------------------------------------------------------------------


def _reconcile_recordings(at_twilio, calls_at_twilio, tally, *, now):
    for start in range(0, len(at_twilio), BATCH):
        batch = at_twilio[start : start + BATCH]
        known = Recording.objects.filter(sid__in=[r["sid"] for r in batch]).in_bulk(
            field_name="sid"
        )
        for resource in batch:
            tally.recordings_seen += 1
            try:
                _reconcile_recording(
                    resource, known.get(resource["sid"]), calls_at_twilio, tally, now=now
                )
            except Exception as error:  # one bad recording must not stop the others
                logger.exception("Reconciliation: recording %s", resource["sid"])
                tally.problems.append(f"{resource['sid']}: {_describe(error)}")


def _reconcile_recording(resource, recording, calls_at_twilio, tally, *, now):
    status = TWILIO_RECORDING_STATUSES.get(resource["status"])
    if status is None:
        return  # still being made at Twilio
    if recording is None:
        _adopt(resource, status, calls_at_twilio, tally)
    elif status == Status.COMPLETED and recording.status == Status.IN_PROGRESS:
        # Its completed callback was lost: the same step the callback would have taken.
        if _note(resource, status).status != Status.IN_PROGRESS:  # moved: its fetch is queued
            tally.queued += 1
    elif status == Status.COMPLETED and recording.status == Status.COMPLETED:
        if not _fetch_on_its_way(recording, now=now):
            with transaction.atomic():
                enqueue(ingest.FETCH_TASK, recording_id=recording.pk)
            tally.queued += 1
    elif recording.status in NO_COPY_AT_TWILIO:
        # Twilio lists only what it still holds, whatever we noted about its deletion.
        Recording.objects.filter(pk=recording.pk).update(twilio_deleted_at=None)
        recording.twilio_deleted_at = None
        if ingest.delete_twilio_copy(recording):
            tally.deleted_at_twilio += 1
        else:
            tally.problems.append(f"{recording.sid}: not deleted at Twilio yet")


def _adopt(resource, status, calls_at_twilio, tally):
    """A recording Twilio has and we never heard of: create it, then the consent gate."""
    call = Call.objects.filter(sid=resource["call_sid"]).first()
    if call is None:
        call = _register_call(resource["call_sid"], calls_at_twilio)
    if status != Status.COMPLETED:
        _note(resource, status)  # absent or failed at Twilio: nothing to fetch or delete
        tally.created += 1
        return
    permission = may_record(call=call)
    if permission:
        _note(resource, Status.COMPLETED)  # queues the fetch, as the callback would
        tally.created += 1
        tally.queued += 1
        return
    # Never downloaded: noted as Twilio made it, then refused and deleted at Twilio.
    recording = _note(resource, Status.IN_PROGRESS)
    Recording.objects.transition(recording.pk, to=Status.COMPLETED, only_from={Status.IN_PROGRESS})
    tally.created += 1
    recording = ingest.refuse_at_ingest(Recording.objects.get(pk=recording.pk), permission)
    if recording.twilio_deleted_at:
        tally.deleted_at_twilio += 1
    else:
        tally.problems.append(f"{recording.sid}: refused, but not deleted at Twilio yet")


def _note(resource, status):
    """What the lost callback would have noted, on the recording and on its call."""
    recording = ingest.note_recording_status(
        sid=resource["sid"],
        call_sid=resource["call_sid"],
        status=status,
        duration=resource["duration"],
        channels=resource["channels"],
        source=resource["source"] or "",
        started_at=resource["start_time"],
    )
    if state := CALL_RECORDING_STATES.get(status):
        Call.objects.transition_recording_state(
            recording.call_id, to=state, only_from={Call.RecordingState.REQUESTED}
        )
    return recording


def _fetch_on_its_way(recording, *, now):
    """Is a fetch of ``recording`` running, waiting in the outbox, or published recently?"""
    recently = now - RECENTLY_QUEUED
    if recording.fetch_started_at and recording.fetch_started_at > recently:
        return True
    return (
        OutboxMessage.objects.filter(task=ingest.FETCH_TASK, kwargs__recording_id=recording.pk)
        .filter(Q(published_at__isnull=True) | Q(published_at__gt=recently))
        .exists()
    )


# --- calls ---------------------------------------------------------------------------------


def _twilio_call(sid, calls_at_twilio):
    return calls_at_twilio.get(sid) or twilio_client.fetch_call(sid)


def _register_call(sid, calls_at_twilio):
    """A call we never saw ring (its webhooks never reached us), from Twilio's resource."""
    resource = _twilio_call(sid, calls_at_twilio)
    return register_twilio_call(
        sid=sid,
        direction=resource["direction"],
        from_number=resource["from"],
        to_number=resource["to"],
        started_at=resource["start_time"],
    )


def _close_open_calls(calls_at_twilio, tally):
    """Close every call we think open that Twilio has ended (its final callback was lost)."""
    open_calls = Call.objects.filter(status__in=OPEN_CALL_STATUSES).order_by("pk")
    for call in open_calls.iterator(chunk_size=BATCH):
        tally.calls_seen += 1
        try:
            resource = _twilio_call(call.sid, calls_at_twilio)
            if resource["status"] in Call.FINAL_STATUSES and close_call(
                call,
                status=resource["status"],
                started_at=resource["start_time"],
                ended_at=resource["end_time"],
                duration=resource["duration"],
            ):
                tally.calls_closed += 1
                logger.info("Reconciliation closed call %s (%s)", call.sid, resource["status"])
        except twilio_client.TwilioError as error:
            if error.status == 404:
                # Not a call of this account (a simulated or demo call): nothing to line up.
                logger.info("Reconciliation: Twilio does not know call %s", call.sid)
                continue
            tally.problems.append(f"{call.sid}: {_describe(error)}")
        except Exception as error:  # one bad call must not stop the others
            logger.exception("Reconciliation: call %s", call.sid)
            tally.problems.append(f"{call.sid}: {_describe(error)}")


def _describe(error):
    return str(getattr(error, "message", None) or f"{type(error).__name__}: {error}")
