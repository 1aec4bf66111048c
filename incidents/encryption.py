"""The strong-encryption test (高度な暗号化, PPC rule 7 proviso) of each affected recording.

A recording is protected when everything that makes its audio readable stayed out of the
affected scope: the stored blob is in our format (``CCREC`` version 1: AES-256-GCM segments,
``recordings.crypto``), its data key is stored only wrapped and the wrapped key opens with its
master key (so it is intact and the master key is ours), and that master key is not among the
incident's affected key ids. A purged recording holds nothing readable (its key was
destroyed); a recording never stored was not in our storage. Each result keeps its evidence:
the key id, when that key became the wrapping key and the rotations after it (the
``KEY_ROTATION`` events of ``rotate_recording_keys``), the cipher and the segment format.

The rows are tested in keyset batches of ``BATCH`` (by id), each batch one ``bulk_update``.
"""

from django.core.files.storage import storages
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from audit import services as audit
from audit.models import AccessEvent
from recordings import crypto
from recordings.models import Recording

from .models import AffectedRecording, Incident

BATCH = 500
# Why a recording got its result (the reason column keeps the code).
REASONS = {
    "purged": _("Purged: its key was destroyed."),
    "not_stored": _("Never stored: the audio was not in our storage."),
    "blob_missing": _("The stored file is missing."),
    "not_our_format": _("The stored file is not in our encrypted format."),
    "no_wrapped_key": _("No wrapped key is stored."),
    "unknown_master_key": _("Its master key is not one of ours any more."),
    "damaged_wrapped_key": _("The wrapped key is damaged: it does not open with its master key."),
    "master_key_in_scope": _("Its master key is in the affected scope."),
    "protected": _(
        "Encrypted in our format, its wrapped key intact and its master key kept apart."
    ),
}
Result = AffectedRecording.Result


def key_history():
    """Each master key id with when it became the wrapping key and when the next rotation
    replaced it, from the key rotation events (few rows: one per rotation)."""
    rotations = list(
        AccessEvent.objects.filter(action=AccessEvent.Action.KEY_ROTATION)
        .order_by("seq")
        .values_list("occurred_at", "detail")
    )
    history = {}
    for index, (at, detail) in enumerate(rotations):
        key_id = (detail or {}).get("key_id")
        if not key_id or key_id in history:
            continue
        following = next(
            (when for when, later in rotations[index + 1 :] if later.get("key_id") != key_id),
            None,
        )
        history[key_id] = {
            "wrapping_since": at.isoformat(),
            "replaced_at": following.isoformat() if following else None,
        }
    return history, [at.isoformat() for at, _ in rotations]


def check_recording(recording, *, affected_key_ids, history, rotations):
    """``(result, reason code, evidence)`` for one recording (see ``REASONS``)."""
    evidence = {"recording": recording.sid, "status": recording.status}
    if recording.status == Recording.Status.PURGED:
        evidence["wrapped_key"] = "destroyed" if recording.wrapped_key is None else "present"
        if recording.wrapped_key is None:
            return Result.NOTHING_HELD, "purged", evidence
    if recording.status != Recording.Status.PURGED and not recording.blob_name:
        return Result.NOTHING_HELD, "not_stored", evidence
    evidence.update(
        {
            "key_id": recording.key_id,
            "key_wrapping_since": (history.get(recording.key_id) or {}).get("wrapping_since"),
            "key_replaced_at": (history.get(recording.key_id) or {}).get("replaced_at"),
            "rotations": rotations,
            "stored_at": recording.stored_at.isoformat() if recording.stored_at else None,
            "ciphertext_sha256": recording.ciphertext_sha256,
        }
    )
    try:
        with storages["recordings"].open(recording.blob_name, "rb") as blob:
            _, segment_size, _, _ = crypto.read_header(blob)
    except (OSError, ValueError):
        return Result.NOT_PROTECTED, "blob_missing", evidence
    except crypto.RecordingIntegrityError:
        return Result.NOT_PROTECTED, "not_our_format", evidence
    evidence.update(
        {
            "format": f"{crypto.MAGIC.decode()} v{crypto.VERSION}",
            "cipher": "AES-256-GCM, HKDF-SHA256 segment key",
            "segment_size": segment_size,
            "key_wrap": "AES-256-GCM",
        }
    )
    if not recording.wrapped_key:
        return Result.NOT_PROTECTED, "no_wrapped_key", evidence
    try:
        crypto.unwrap_key(recording.key_id, bytes(recording.wrapped_key))
    except crypto.UnknownMasterKey:
        return Result.NOT_PROTECTED, "unknown_master_key", evidence
    except crypto.RecordingIntegrityError:
        return Result.NOT_PROTECTED, "damaged_wrapped_key", evidence
    evidence["wrapped_key"] = "opens with its master key"
    if recording.key_id in affected_key_ids:
        return Result.NOT_PROTECTED, "master_key_in_scope", evidence
    return Result.PROTECTED, "protected", evidence


def run_encryption_test(incident_id, *, by=None, batch=BATCH):
    """Test every affected recording of the incident; store each result and the counts."""
    incident = Incident.objects.get(pk=incident_id)
    affected_key_ids = set(incident.affected_key_ids or [])
    history, rotations = key_history()
    last = 0
    fields = ("id", "sid", "status", "blob_name", "key_id", "wrapped_key", "stored_at")
    while True:
        rows = list(
            AffectedRecording.objects.filter(incident=incident, pk__gt=last)
            .select_related("recording")
            .only("pk", *(f"recording__{name}" for name in fields), "recording__ciphertext_sha256")
            .order_by("pk")[:batch]
        )
        if not rows:
            break
        for row in rows:
            row.result, row.reason, row.evidence = check_recording(
                row.recording,
                affected_key_ids=affected_key_ids,
                history=history,
                rotations=rotations,
            )
        AffectedRecording.objects.bulk_update(rows, ["result", "reason", "evidence"])
        last = rows[-1].pk
    counts = AffectedRecording.objects.filter(incident=incident).aggregate(
        protected=Count("pk", filter=~Q(result=Result.NOT_PROTECTED)),
        unprotected=Count("pk", filter=Q(result=Result.NOT_PROTECTED)),
        persons=Count("customer_id", filter=Q(result=Result.NOT_PROTECTED), distinct=True),
    )
    with transaction.atomic():
        Incident.objects.filter(pk=incident.pk).update(
            tested_at=timezone.now(),
            protected_recordings=counts["protected"],
            unprotected_recordings=counts["unprotected"],
            unprotected_persons=counts["persons"],
        )
        audit.record(
            AccessEvent.Action.INCIDENT_ENCRYPTION_TEST,
            actor=by,
            actor_label="" if by else "incident encryption test",
            detail={
                "incident": incident.reference,
                "affected_key_ids": sorted(affected_key_ids),
                **counts,
            },
        )
    incident.refresh_from_db()
    return incident
