"""Ingest: Twilio's recording callbacks, then fetch, encrypt, store and verify the audio.

Twilio's copy is deleted only after ours is stored and verified, or when the consent gate
says the call may not be recorded (then ours is never made).
"""

import hashlib
import io
import logging
import secrets
from datetime import UTC, timedelta
from email.utils import parsedate_to_datetime

from django.core.files import File
from django.core.files.storage import storages
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

import twilio_client
from consent.services import may_record
from contactcenter.models import Call

from . import crypto
from .models import Recording, RecordingPurpose, Tombstone
from .outbox import enqueue

logger = logging.getLogger(__name__)

FETCH_TASK = "recordings.tasks.fetch_recording"
DOWNLOAD_CHUNK = 256 * 1024
# A fetch holds its recording this long; a second fetch meanwhile leaves it alone, and after
# it (the worker died) the next attempt takes over and deletes the half-written file.
FETCH_LEASE = timedelta(minutes=15)
# A recording waiting to be fetched this long has lost its task (Redis flushed, a worker
# killed): it is queued again. Longer than the lease plus the longest retry countdown.
STALLED_AFTER = timedelta(hours=1)
WITHDRAWN_REASONS = {"withdrawn", "opted_out"}

Status = Recording.Status
# Twilio's RecordingStatus → ours, and the states a callback may move a recording from.
TWILIO_STATUSES = {
    "in-progress": Status.IN_PROGRESS,
    "completed": Status.COMPLETED,
    "absent": Status.ABSENT,
    "failed": Status.FAILED,
}
MAY_BECOME = {
    Status.IN_PROGRESS: [Status.IN_PROGRESS],
    Status.COMPLETED: [Status.IN_PROGRESS],
    Status.ABSENT: [Status.IN_PROGRESS],
    Status.FAILED: [Status.IN_PROGRESS],
}


class FetchError(Exception):
    """The media could not be fetched this time; ``retryable`` says whether to try again."""

    def __init__(self, message, *, retryable):
        super().__init__(message)
        self.retryable = retryable


# --- Twilio's recording status callback ----------------------------------------------------


def note_recording_status(params):
    """Keep what a recording status callback says; on ``completed``, queue the fetch.

    Idempotent on RecordingSid, and a late or repeated callback never moves a recording
    backwards. The fetch is queued through the outbox, in the same transaction.
    """
    status = TWILIO_STATUSES.get(params.get("RecordingStatus", ""))
    sid = params.get("RecordingSid", "")
    call = Call.objects.filter(sid=params.get("CallSid", "")).first()
    if status is None or not sid.startswith("RE") or call is None:
        return None
    details = {
        "duration": _int(params.get("RecordingDuration")),
        "channels": _int(params.get("RecordingChannels")),
        "source": params.get("RecordingSource", "")[:40],
        "started_at": _twilio_time(params.get("RecordingStartTime")),
        "media_url": params.get("RecordingUrl", "")[:300],
        "twilio_error_code": params.get("ErrorCode", "")[:10],
    }
    details = {field: value for field, value in details.items() if value not in (None, "")}
    with transaction.atomic():
        recording, created = _recording_for(sid, call, details)
        moved = (
            Recording.objects.filter(pk=recording.pk, status__in=MAY_BECOME[status])
            .exclude(status=status)
            .update(status=status, **details)
        )
        if (moved or created) and status == Status.COMPLETED:
            enqueue(FETCH_TASK, recording_id=recording.pk)
    return Recording.objects.get(pk=recording.pk)


def _recording_for(sid, call, details):
    recording = Recording.objects.filter(sid=sid).first()
    if recording:
        return recording, False
    try:
        with transaction.atomic():
            return Recording.objects.create(sid=sid, call=call, **details), False
    except IntegrityError:
        return Recording.objects.get(sid=sid), False


# --- fetching ------------------------------------------------------------------------------


def fetch(recording_id):
    """Fetch, encrypt, store and verify one recording, then delete Twilio's copy.

    Running it twice stores once: a fetch takes a lease on the recording, and a second one
    that finds the lease live leaves the work to the first. Killed at any moment, it leaves
    either no stored copy (Twilio's copy is intact; the half-written file is named on the
    recording and deleted by the next attempt) or a verified one. Raises ``FetchError`` when
    the fetch should be tried again.
    """
    now = timezone.now()
    with transaction.atomic():
        recording = (
            Recording.objects.select_for_update(of=("self",))
            .select_related("call__customer", "call__operator")
            .get(pk=recording_id)
        )
        if recording.status not in (Status.COMPLETED, Status.FETCH_FAILED):
            return recording
        if recording.fetch_started_at and recording.fetch_started_at > now - FETCH_LEASE:
            logger.info("Recording %s is being fetched by another worker", recording.sid)
            return recording
        leftover = recording.partial_blob_name
        name = _blob_name(recording)
        Recording.objects.filter(pk=recording.pk).update(
            fetch_attempts=recording.fetch_attempts + 1,
            fetch_started_at=now,
            partial_blob_name=name,
            updated_at=now,
        )
    if leftover:  # written by an attempt that was killed
        delete_quietly(storages["recordings"], leftover)
    permission = may_record(call=recording.call)
    if not permission:
        return refuse_at_ingest(recording, permission)
    try:
        stored = _download_and_store(recording, name)
    except FetchError:
        _end_attempt(recording, name)
        raise
    with transaction.atomic():
        current = Recording.objects.select_for_update().get(pk=recording.pk)
        if current.status == Status.STORED or current.partial_blob_name != name:
            # Another worker took over (our lease had run out) or got there first.
            delete_quietly(storages["recordings"], stored["blob_name"])
            return current
        _mark_stored(current, stored, permission)
    delete_twilio_copy(current)
    return current


def store_audio(recording, chunks):
    """Encrypt and store audio that did not come from Twilio (the demo's recordings) exactly
    as a fetched recording is stored; the consent gate applies all the same."""
    permission = may_record(call=recording.call)
    if not permission:
        return refuse_at_ingest(recording, permission)
    stored = _store_encrypted(_blob_name(recording), chunks)
    with transaction.atomic():
        _mark_stored(recording, stored, permission)
    return recording


def _blob_name(recording):
    return f"{timezone.now():%Y/%m}/{recording.sid}-{secrets.token_hex(4)}.ccrec"


def _mark_stored(recording, stored, permission):
    for field, value in stored.items():
        setattr(recording, field, value)
    recording.status = Status.STORED
    recording.stored_at = timezone.now()
    recording.last_error = ""
    recording.partial_blob_name = ""
    recording.fetch_started_at = None
    recording.retain_until = _keep_for_purposes(recording, permission)
    recording.save()


def _end_attempt(recording, name):
    """Give the lease back after a failed attempt (unless another worker has taken over)."""
    Recording.objects.filter(pk=recording.pk, partial_blob_name=name).update(
        fetch_started_at=None, partial_blob_name=""
    )


def _download_and_store(recording, name):
    """Stream the media into storage encrypted; return the stored copy's fields, verified."""
    try:
        response = twilio_client.open_recording_media(recording.sid)
    except twilio_client.TwilioError as error:
        raise FetchError(str(error.message), retryable=error.retryable) from error
    with response:
        return _store_encrypted(
            name,
            response.iter_content(DOWNLOAD_CHUNK),
            expected_size=_int(response.headers.get("Content-Length")),
        )


def _store_encrypted(name, chunks, *, expected_size=None):
    """Encrypt ``chunks`` under a new key into storage as ``name``; verify; return the fields."""
    data_key = crypto.new_data_key()
    key_id, wrapped = crypto.wrap_key(data_key)
    storage = storages["recordings"]
    source = _HashingStream(chunks)
    encrypted = _HashingStream(crypto.encrypt_chunks(source, data_key), hashing=False)
    try:
        saved = storage.save(name, File(_ReadableStream(encrypted), name=name))
    except Exception as error:  # network cut mid-stream, storage full, …
        delete_quietly(storage, name)
        raise FetchError(f"download interrupted: {error}", retryable=True) from error
    if saved != name:  # the storage chose another name: never expected, but never lost
        delete_quietly(storage, saved)
        raise FetchError(f"storage stored {name} as {saved}", retryable=True)
    if expected_size is not None and source.size != expected_size:
        delete_quietly(storage, name)
        raise FetchError(
            f"received {source.size} bytes of {expected_size}: the download was cut short",
            retryable=True,
        )
    if source.size == 0:
        delete_quietly(storage, name)
        raise FetchError("Twilio sent no audio", retryable=True)
    stored_sha256 = _verify(storage, name, data_key, encrypted, source)
    return {
        "blob_name": name,
        "key_id": key_id,
        "wrapped_key": wrapped,
        "plaintext_size": source.size,
        "ciphertext_size": encrypted.size,
        "plaintext_sha256": source.sha256.hexdigest(),
        "ciphertext_sha256": stored_sha256,
    }


def _verify(storage, name, data_key, encrypted, source):
    """Read the stored file back, once: every segment must authenticate under the new key, in
    order, up to the sealed last one, and hold as many bytes as were sent.

    AES-GCM authenticates each segment, its position and the end of the file, under a key
    that exists nowhere else: a file that passes is the one written, so the audio is not
    hashed a second time. The stored file's SHA-256 is taken on the same pass, for the record.
    """
    try:
        blob = storage.open(name, "rb")
    except OSError as error:
        raise FetchError(f"stored copy cannot be read back: {error}", retryable=True) from error
    with blob:
        reader = _HashingReader(blob)
        decrypted = 0
        try:
            for chunk in crypto.decrypt_all(reader, data_key):
                decrypted += len(chunk)
        except crypto.RecordingIntegrityError as error:
            delete_quietly(storage, name)
            raise FetchError(f"stored copy does not verify: {error}", retryable=True) from error
    if decrypted != source.size or reader.hashed_to != encrypted.size:
        delete_quietly(storage, name)
        raise FetchError("stored copy differs from what was written", retryable=True)
    return reader.sha256.hexdigest()


def _keep_for_purposes(recording, permission):
    """Give the recording the purposes its consent answered for; return when the last ends."""
    started = recording.call.started_at
    RecordingPurpose.objects.filter(recording=recording).delete()
    windows = [
        RecordingPurpose(
            recording=recording,
            purpose=announced.purpose,
            notice=permission.notice,
            usable_until=started + timedelta(days=announced.days),
            allows_training_review=announced.training,
        )
        for announced in permission.purposes
    ]
    RecordingPurpose.objects.bulk_create(windows)
    # Consent with no purpose announced keeps nothing: the recording is due at once.
    return max((window.usable_until for window in windows), default=timezone.now())


def mark_fetch_failed(recording_id, error):
    Recording.objects.filter(pk=recording_id, status=Status.COMPLETED).update(
        status=Status.FETCH_FAILED, last_error=str(error)[:2000]
    )


def note_fetch_error(recording_id, error):
    Recording.objects.filter(pk=recording_id).update(last_error=str(error)[:2000])


def retry_fetch(recording):
    """Queue a failed fetch again (the admin's retry action)."""
    with transaction.atomic():
        moved = Recording.objects.filter(pk=recording.pk, status=Status.FETCH_FAILED).update(
            status=Status.COMPLETED, last_error=""
        )
        if moved:
            enqueue(FETCH_TASK, recording_id=recording.pk)
    return bool(moved)


def requeue_stalled_fetches(*, now=None, limit=500):
    """Queue the fetch again for recordings waiting too long (their task was lost).

    A task is lost when Redis loses its queue or a worker dies holding it (Redis would hand
    it out again only after the visibility timeout). Fetching is idempotent, so queueing a
    recording whose task is merely slow costs one skipped run.
    """
    cutoff = (now or timezone.now()) - STALLED_AFTER
    stalled = list(
        Recording.objects.filter(status=Status.COMPLETED)
        .filter(
            Q(fetch_started_at__lt=cutoff) | Q(fetch_started_at__isnull=True, updated_at__lt=cutoff)
        )
        .values_list("pk", flat=True)[:limit]
    )
    with transaction.atomic():
        for pk in stalled:
            enqueue(FETCH_TASK, recording_id=pk)
        Recording.objects.filter(pk__in=stalled).update(updated_at=timezone.now())
    return len(stalled)


def refuse_at_ingest(recording, permission):
    """The consent gate said no: never download, delete Twilio's copy, leave a tombstone."""
    reason = (
        Tombstone.Reason.CONSENT_WITHDRAWN
        if permission.reason in WITHDRAWN_REASONS
        else Tombstone.Reason.NO_CONSENT
    )
    with transaction.atomic():
        Recording.objects.filter(pk=recording.pk).update(
            status=Status.REFUSED, fetch_started_at=None, partial_blob_name=""
        )
        Tombstone.objects.get_or_create(
            recording=recording,
            defaults={
                "reason": reason,
                "detail": str(permission.message),
                "deleted_by_system": "consent gate at ingest",
            },
        )
    recording.refresh_from_db()
    delete_twilio_copy(recording)
    return recording


def delete_twilio_copy(recording):
    """Delete Twilio's copy and note when; a failure is logged and retried by the purge run."""
    if recording.twilio_deleted_at:
        return True
    try:
        twilio_client.delete_recording(recording.sid)
    except twilio_client.TwilioError as error:
        logger.warning("Twilio's copy of %s not deleted yet: %s", recording.sid, error)
        note_fetch_error(recording.pk, f"Twilio deletion: {error.message}")
        return False
    now = timezone.now()
    Recording.objects.filter(pk=recording.pk).update(twilio_deleted_at=now)
    recording.twilio_deleted_at = now
    return True


# --- helpers -------------------------------------------------------------------------------


class _HashingStream:
    """Iterate ``chunks`` while counting and hashing them."""

    def __init__(self, chunks, *, hashing=True):
        self.chunks = chunks
        self.size = 0
        self.sha256 = hashlib.sha256() if hashing else None

    def __iter__(self):
        for chunk in self.chunks:
            if chunk:
                self.size += len(chunk)
                if self.sha256 is not None:
                    self.sha256.update(chunk)
                yield chunk


class _HashingReader:
    """A file that hashes what is read from it; decryption reads the whole file in order."""

    def __init__(self, file):
        self.file = file
        self.sha256 = hashlib.sha256()
        self.hashed_to = 0

    def seek(self, offset, whence=io.SEEK_SET):
        return self.file.seek(offset, whence)

    def tell(self):
        return self.file.tell()

    def read(self, size=-1):
        offset = self.file.tell()
        data = self.file.read(size)
        if offset == self.hashed_to:
            self.sha256.update(data)
            self.hashed_to += len(data)
        elif offset > self.hashed_to:
            raise crypto.RecordingIntegrityError("stored copy was not read in order")
        return data


class _ReadableStream(io.RawIOBase):
    """A read-only, non-seekable file over an iterator of bytes, for ``Storage.save``."""

    def __init__(self, chunks):
        self.chunks = iter(chunks)
        self.pending = b""

    def readable(self):
        return True

    def readinto(self, buffer):
        while not self.pending:
            self.pending = next(self.chunks, None)
            if self.pending is None:
                self.pending = b""
                return 0
        size = min(len(buffer), len(self.pending))
        buffer[:size] = self.pending[:size]
        self.pending = self.pending[size:]
        return size


def delete_quietly(storage, name):
    try:
        storage.delete(name)
    except OSError:
        logger.exception("Could not delete %s from recording storage", name)


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _twilio_time(value):
    """RecordingStartTime comes as an RFC 2822 date; ISO 8601 is accepted too."""
    if not value:
        return None
    try:
        return parsedate_to_datetime(value)
    except (TypeError, ValueError):
        parsed = parse_datetime(value)
        if parsed and parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed
