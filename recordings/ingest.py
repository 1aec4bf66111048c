"""Ingest: Twilio's recording callbacks, then fetch, encrypt, store and verify the audio.

Twilio's copy is deleted only after ours is stored and verified, or when the consent gate
says the call may not be recorded (then ours is never made).
"""

import hashlib
import io
import logging
import secrets
import time
from datetime import timedelta

from django.conf import settings
from django.core.files import File
from django.core.files.storage import storages
from django.core.mail import send_mail
from django.db import DatabaseError, IntegrityError, close_old_connections, transaction
from django.db.models import F, Q
from django.db.models.functions import Now
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

import twilio_client
from consent.services import may_record
from contactcenter.models import Call
from contactcenter.roles import require, staff_emails

from . import crypto, twilio_encryption
from .models import Recording, RecordingPurpose, Tombstone
from .outbox import enqueue

logger = logging.getLogger(__name__)

FETCH_TASK = "recordings.tasks.fetch_recording"
DELETE_TASK = "recordings.tasks.delete_twilio_copy"
DOWNLOAD_CHUNK = 64 * 1024
# A fetch holds its recording this long past its last heartbeat; a second fetch meanwhile
# leaves it alone, and after it (the worker died) the next attempt takes over and deletes the
# half-written file. The lease is taken, renewed and compared on the database's clock, so a
# worker whose clock runs fast cannot take over a live one.
FETCH_LEASE = timedelta(seconds=settings.RECORDINGS_FETCH_LEASE_SECONDS)
# While the audio streams, the lease is renewed this often (at the next chunk after it).
HEARTBEAT = FETCH_LEASE / 4
# A recording waiting to be fetched this long with no fetch running has lost its task (Redis
# flushed it): it is queued again. Longer than the longest retry countdown (30 minutes). A
# fetch whose worker died is queued again as soon as its lease runs out.
STALLED_AFTER = timedelta(minutes=35)
# A 401 or 404 for media Twilio has just announced is tried again this many times: Twilio's
# media may lag the recording's callback.
MEDIA_NOT_READY_RETRIES = 3
# The prefix of ``last_error`` when Twilio's copy could not be deleted (cleared once it is).
DELETION_ERROR = "Twilio deletion: "
WITHDRAWN_REASONS = {"withdrawn", "opted_out"}

Status = Recording.Status
# What a recording status callback may report; which moves it makes is
# ``Recording.STATUS_TRANSITIONS``.
CALLBACK_STATUSES = frozenset({Status.IN_PROGRESS, Status.COMPLETED, Status.ABSENT, Status.FAILED})


class FetchError(Exception):
    """The media could not be fetched this time; ``retryable`` says whether to try again, and
    ``retries`` at most how many times (None: as many as the task allows)."""

    def __init__(self, message, *, retryable, retries=None, alert=False):
        super().__init__(message)
        self.retryable = retryable
        self.retries = retries
        # Staff are emailed when the fetch gives up (a key to add, a copy that does not verify).
        self.alert = alert


class LeaseLost(Exception):
    """Another fetch took the recording over (this one's lease had run out): stop."""


# --- Twilio's recording status callback ----------------------------------------------------


def note_recording_status(
    *,
    sid,
    call_sid,
    status,
    duration=None,
    channels=None,
    source="",
    started_at=None,
    media_url="",
    twilio_error_code="",
):
    """Keep what Twilio says of a recording (``status`` is one of ours, ``Recording.Status``);
    on ``completed``, queue the fetch. Return the recording, or None for an unknown call.

    Idempotent on the recording's SID, and a late or repeated callback never moves a
    recording backwards. The fetch is queued through the outbox, in the same transaction.
    """
    call = Call.objects.filter(sid=call_sid).first()
    if status not in CALLBACK_STATUSES or not sid.startswith("RE") or call is None:
        return None
    details = {
        "duration": duration,
        "channels": channels,
        "source": source[:40],
        "started_at": started_at,
        "media_url": media_url[:300],
        "twilio_error_code": twilio_error_code[:10],
    }
    details = {field: value for field, value in details.items() if value not in (None, "")}
    with transaction.atomic():
        recording = _recording_for(sid, call, details)
        moved = Recording.objects.transition(recording.pk, to=status, **details)
        if moved and status == Status.COMPLETED:
            enqueue(FETCH_TASK, recording_id=recording.pk)
    return Recording.objects.get(pk=recording.pk)


def _recording_for(sid, call, details):
    recording = Recording.objects.filter(sid=sid).first()
    if recording:
        return recording
    try:
        with transaction.atomic():
            return Recording.objects.create(sid=sid, call=call, **details)
    except IntegrityError:
        return Recording.objects.get(sid=sid)


# --- fetching ------------------------------------------------------------------------------


def fetch(recording_id):
    """Fetch, encrypt, store and verify one recording, then delete Twilio's copy.

    Running it twice stores once: a fetch takes a lease on the recording, renewed by a
    heartbeat while the audio streams, and a second one that finds the lease live leaves the
    work to the first. Killed at any moment, it leaves either no stored copy (Twilio's copy is
    intact; the half-written file is named on the recording and deleted by the next attempt)
    or a verified one. Consent is final at commit: it is checked again under the recording's
    lock in the transaction that marks it stored, so a withdrawal during the download leaves
    no copy of ours and none at Twilio. Raises ``FetchError`` when the fetch should be tried
    again, and a database error as it came (the task retries both).

    Never inside another transaction (the lease is durable, so that is an error): the
    download, the storage and Twilio's deletion would run with that transaction's locks held.
    """
    with transaction.atomic(durable=True):
        recording = (
            Recording.objects.select_for_update(of=("self",))
            .select_related("call__customer", "call__operator")
            .get(pk=recording_id)
        )
        if recording.status not in (Status.COMPLETED, Status.FETCH_FAILED):
            return recording
        leftover = recording.partial_blob_name
        name = _blob_name(recording)
        # Compared and set on the database's clock: the workers' clocks do not matter.
        taken = (
            Recording.objects.filter(pk=recording.pk)
            .filter(Q(fetch_started_at__isnull=True) | Q(fetch_started_at__lte=Now() - FETCH_LEASE))
            .update(
                fetch_attempts=F("fetch_attempts") + 1,
                fetch_started_at=Now(),
                partial_blob_name=name,
                updated_at=Now(),
            )
        )
        if not taken:
            logger.info("Recording %s is being fetched by another worker", recording.sid)
            return recording
    if leftover:  # written by an attempt that was killed
        delete_quietly(storages["recordings"], leftover)
    try:
        return _fetch_leased(recording, name)
    except DatabaseError:
        _give_back_after_database_error(recording, name)
        raise


def _fetch_leased(recording, name):
    permission = may_record(call=recording.call)
    if recording.consent_withdrawn_at or not permission:
        return refuse_at_ingest(recording, permission)
    try:
        stored = _download_and_store(recording, name)
    except FetchError:
        _end_attempt(recording, name)
        raise
    except LeaseLost:
        logger.info("Recording %s was taken over by another worker", recording.sid)
        recording.refresh_from_db()
        return recording
    with transaction.atomic():
        current = Recording.objects.select_for_update().get(pk=recording.pk)
        # Another worker took over (our lease had run out) or got there first.
        superseded = current.status == Status.STORED or current.partial_blob_name != name
        withdrawn = False
        if not superseded:
            # Consent is final at commit. A withdrawal marks this row under the same lock
            # (``retention.forget_without_consent``), so either it committed before this
            # lock was granted and is seen here, or it waits and finds the row stored.
            permission = may_record(call=recording.call)
            withdrawn = bool(current.consent_withdrawn_at) or not permission
        if withdrawn:
            _refuse(current, permission, during_fetch=True)
        kept = not superseded and not withdrawn and _mark_stored(current, stored, permission)
    # Files and Twilio only once the row is committed and unlocked.
    if not kept:
        delete_quietly(storages["recordings"], stored["blob_name"])
        current.refresh_from_db()
        if withdrawn:
            delete_twilio_copy(current)
        return current
    delete_twilio_copy(current)
    return current


def _give_back_after_database_error(recording, name):
    """The database failed mid-fetch (connection lost, server restarting): drop the broken
    connection, and if the database answers again, give the lease back and delete the file
    being written, so that the retry starts at once instead of waiting for the lease."""
    if transaction.get_connection().in_atomic_block:
        return
    close_old_connections()
    try:
        given_back = _end_attempt(recording, name)
    except DatabaseError:
        logger.warning("Recording %s: the database is unreachable; its lease runs out", recording)
        close_old_connections()
        return
    if given_back:
        delete_quietly(storages["recordings"], name)


def store_audio(recording, chunks):
    """Encrypt and store audio that did not come from Twilio (the demo's recordings) exactly
    as a fetched recording is stored; the consent gate applies all the same."""
    permission = may_record(call=recording.call)
    if not permission:
        return refuse_at_ingest(recording, permission)
    stored = _store_encrypted(_blob_name(recording), chunks)
    with transaction.atomic():
        kept = _mark_stored(recording, stored, permission)
    if not kept:
        delete_quietly(storages["recordings"], stored["blob_name"])
        recording.refresh_from_db()
    return recording


def _blob_name(recording):
    return f"{timezone.now():%Y/%m}/{recording.sid}-{secrets.token_hex(4)}.ccrec"


def _mark_stored(recording, stored, permission):
    """Mark ``recording`` stored with its encrypted copy and the purposes its consent answered
    for; return False, writing nothing, if its status may not become stored (any longer)."""
    windows = _purpose_windows(recording, permission)
    fields = {
        **stored,
        "stored_at": timezone.now(),
        "last_error": "",
        "partial_blob_name": "",
        "fetch_started_at": None,
        # Consent with no purpose announced keeps nothing: the recording is due at once.
        "retain_until": max((window.usable_until for window in windows), default=timezone.now()),
    }
    if not Recording.objects.transition(recording.pk, to=Status.STORED, **fields):
        return False
    RecordingPurpose.objects.filter(recording=recording).delete()
    RecordingPurpose.objects.bulk_create(windows)
    for field, value in {"status": Status.STORED, **fields}.items():
        setattr(recording, field, value)
    return True


def _end_attempt(recording, name):
    """Give the lease back after a failed attempt (unless another worker has taken over)."""
    return Recording.objects.filter(pk=recording.pk, partial_blob_name=name).update(
        fetch_started_at=None, partial_blob_name=""
    )


def _renewing_lease(chunks, recording, name):
    """Yield ``chunks``, renewing the fetch's lease every ``HEARTBEAT`` on the database's
    clock; raise ``LeaseLost`` if another fetch has taken the recording over meanwhile."""
    renewed = time.monotonic()
    for chunk in chunks:
        if time.monotonic() - renewed >= HEARTBEAT.total_seconds():
            renewed = time.monotonic()
            still_ours = Recording.objects.filter(pk=recording.pk, partial_blob_name=name).update(
                fetch_started_at=Now()
            )
            if not still_ours:
                raise LeaseLost(recording.sid)
        yield chunk


def _download_and_store(recording, name):
    """Stream the media into storage encrypted; return the stored copy's fields, verified.

    Media Twilio encrypted with our public key (Voice Recording Encryption) is decrypted on
    the way, straight into our own encryption; the copy is stored only once Twilio's GCM tag
    has verified at the end of the stream."""
    cipher = _twilio_cipher(recording)
    response = _twilio_answer(lambda: twilio_client.open_recording_media(recording.sid))
    with response:
        chunks = _renewing_lease(response.iter_content(DOWNLOAD_CHUNK), recording, name)
        size = _int(response.headers.get("Content-Length"))
        if cipher is not None:
            chunks = twilio_encryption.decrypting(chunks, *cipher)
            size = None if size is None else size - twilio_encryption.TAG_SIZE
        return _store_encrypted(name, chunks, expected_size=size)


def _twilio_answer(request):
    """``request()``, with Twilio's refusals as the fetch's errors."""
    try:
        return request()
    except twilio_client.TwilioError as error:
        if error.may_be_lagging:
            raise FetchError(
                str(error.message), retryable=True, retries=MEDIA_NOT_READY_RETRIES
            ) from error
        raise FetchError(str(error.message), retryable=error.retryable) from error


def _twilio_cipher(recording):
    """``(content key, iv)`` of a recording Twilio encrypted with our public key, or None.

    Asked of Twilio for every recording, keys configured or not: a recording encrypted for a
    key we do not hold must fail here, not be stored as if its ciphertext were audio."""
    details = _twilio_answer(lambda: twilio_client.recording_encryption_details(recording.sid))
    if details is None:
        return None
    try:
        return twilio_encryption.unwrap(details)
    except twilio_encryption.TwilioEncryptionError as error:
        raise FetchError(str(error.message), retryable=False, alert=True) from error


def _store_encrypted(name, chunks, *, expected_size=None):
    """Encrypt ``chunks`` under a new key into storage as ``name``; verify; return the fields."""
    data_key = crypto.new_data_key()
    key_id, wrapped = crypto.wrap_key(data_key)
    storage = storages["recordings"]
    source = _HashingStream(chunks)
    encrypted = _HashingStream(crypto.encrypt_chunks(source, data_key), hashing=False)
    try:
        saved = storage.save(name, File(_ReadableStream(encrypted), name=name))
    except (LeaseLost, DatabaseError):  # taken over, or the heartbeat found no database
        delete_quietly(storage, name)
        raise
    except twilio_encryption.TwilioEncryptionError as error:  # Twilio's tag did not verify
        delete_quietly(storage, name)
        raise FetchError(str(error.message), retryable=False, alert=True) from error
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


def _purpose_windows(recording, permission):
    """The purposes ``permission`` answered for, each with its window, as unsaved rows.

    A call that may hold card data (a pause for the card number missed or failed) keeps
    every window only as long as the shortest one: the least time card data can be kept."""
    started = recording.call.started_at
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
    if windows and recording.call.card_data_suspected_at is not None:
        shortest = min(window.usable_until for window in windows)
        for window in windows:
            window.usable_until = shortest
    return windows


def mark_fetch_failed(recording_id, error):
    """Give up fetching: 取得失敗, kept until the window its consent allows closes (the
    purge then deletes Twilio's copy), or due at once without consent. Staff are emailed when
    only a person can fix it (a ``FetchError`` raised with ``alert``)."""
    recording = Recording.objects.select_related("call__customer", "call__operator").get(
        pk=recording_id
    )
    permission = may_record(call=recording.call)
    windows = _purpose_windows(recording, permission) if permission else []
    retain_until = max((window.usable_until for window in windows), default=timezone.now())
    if recording.consent_withdrawn_at:
        retain_until = recording.consent_withdrawn_at
    failed = Recording.objects.transition(
        recording_id,
        to=Status.FETCH_FAILED,
        last_error=str(error)[:2000],
        retain_until=retain_until,
    )
    if failed and getattr(error, "alert", False):
        alert_fetch_failed(recording_id, error)


def alert_fetch_failed(recording_id, error):
    """Email supervisors and compliance officers that ``recording_id`` could not be fetched
    for a reason only a person can fix (a private key to add, Twilio's encrypted copy that
    does not verify). Twilio's copy is kept; 「再取得」 on the recording tries again."""
    recording = Recording.objects.select_related("call").get(pk=recording_id)
    recipients = staff_emails()
    if not recipients:
        return
    with translation.override("ja"):
        subject = _("Recording %(sid)s could not be fetched") % {"sid": recording.sid}
        body = _(
            "The recording of call %(call)s could not be fetched from Twilio, and only a "
            "person can fix why:\n\n%(error)s\n\nTwilio's copy is kept. Once fixed, retry "
            "the fetch on the recording's page: %(url)s"
        ) % {
            "call": recording.call.sid,
            "error": error,
            "url": settings.PUBLIC_BASE_URL
            + reverse("admin:recordings_recording_change", args=[recording.pk]),
        }
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients)
    except OSError:
        logger.exception("Could not email staff about recording %s", recording.sid)


def note_fetch_error(recording_id, error):
    Recording.objects.filter(pk=recording_id).update(last_error=str(error)[:2000])


def retry_fetch(recording, *, by):
    """Queue a failed fetch again (the admin's retry action); only for who may change
    recordings (``NotAllowed`` otherwise)."""
    require(by, "recordings.change_recording", _("Your role does not allow fetching again."))
    with transaction.atomic():
        moved = Recording.objects.transition(
            recording.pk, to=Status.COMPLETED, only_from={Status.FETCH_FAILED}, last_error=""
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
    now = now or Now()
    # A lease that ran out: its worker died (a live fetch renews it). Queued once per lease.
    lease_ran_out = Q(fetch_started_at__lt=now - FETCH_LEASE, updated_at__lt=now - FETCH_LEASE)
    lost = Q(fetch_started_at__isnull=True, updated_at__lt=now - STALLED_AFTER)
    stalled = list(
        Recording.objects.filter(status=Status.COMPLETED)
        .filter(lease_ran_out | lost)
        .values_list("pk", flat=True)[:limit]
    )
    with transaction.atomic():
        for pk in stalled:
            enqueue(FETCH_TASK, recording_id=pk)
        Recording.objects.filter(pk__in=stalled).update(updated_at=Now())
    return len(stalled)


def refuse_at_ingest(recording, permission):
    """The consent gate said no: never download, delete Twilio's copy, leave a tombstone."""
    with transaction.atomic():
        refused = _refuse(recording, permission)
    recording.refresh_from_db()
    if refused:
        delete_twilio_copy(recording)
    return recording


def _refuse(recording, permission, *, during_fetch=False):
    """Mark ``recording`` refused with its tombstone, in the caller's transaction; return
    False if it may not be refused (stored meanwhile: a withdrawal purges it instead)."""
    withdrawn = recording.consent_withdrawn_at or permission.reason in WITHDRAWN_REASONS
    refused = Recording.objects.transition(
        recording.pk, to=Status.REFUSED, fetch_started_at=None, partial_blob_name=""
    )
    if not refused:
        return False
    if during_fetch:
        detail = _("Consent was taken back while the recording was being fetched.")
    else:
        detail = permission.message if not permission else _("Consent was taken back.")
    Tombstone.objects.get_or_create(
        recording=recording,
        defaults={
            "reason": (
                Tombstone.Reason.CONSENT_WITHDRAWN if withdrawn else Tombstone.Reason.NO_CONSENT
            ),
            "detail": str(detail),
            "deleted_by_system": "consent gate at ingest",
        },
    )
    return True


def delete_twilio_copy(recording, *, retry_later=True):
    """Delete Twilio's copy and note when. A failure is noted on the recording and, given
    ``retry_later``, retried with backoff by its own task (``DELETE_TASK``, through the
    outbox); the hourly purge run retries whatever is left. Success clears the noted error."""
    if recording.twilio_deleted_at:
        return True
    try:
        twilio_client.delete_recording(recording.sid)
    except twilio_client.TwilioError as error:
        logger.warning("Twilio's copy of %s not deleted yet: %s", recording.sid, error)
        note_fetch_error(recording.pk, f"{DELETION_ERROR}{error.message}")
        if retry_later:
            enqueue(DELETE_TASK, recording_id=recording.pk)
        return False
    now = timezone.now()
    Recording.objects.filter(pk=recording.pk).update(twilio_deleted_at=now)
    Recording.objects.filter(pk=recording.pk, last_error__startswith=DELETION_ERROR).update(
        last_error=""
    )
    recording.twilio_deleted_at = now
    return True


def delete_twilio_copy_of(recording_id):
    """The task's side of ``delete_twilio_copy``: delete Twilio's copy of a recording that is
    ours no longer (stored, refused or purged; never one still waiting to be fetched)."""
    recording = Recording.objects.filter(
        pk=recording_id, status__in=[Status.STORED, Status.REFUSED, Status.PURGED]
    ).first()
    if recording is None:
        return True
    return delete_twilio_copy(recording, retry_later=False)


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
