"""Checkpoints of the audit trail's chain head, signed with a key the database never holds.

The hash chain (``services.verify_chain``) shows a row edited in place, but not a chain that
whoever controls the database recomputed from an edited row onwards, nor the newest rows
removed. A checkpoint — the sequence number and hash of the newest event, and the time — is
signed with ``AUDIT_ANCHOR_KEY`` (Ed25519) and written outside the database, to
``audit-anchors/<seq>.json`` in the recordings storage or to ``AUDIT_ANCHOR_DIR``. The chain
must then agree with every checkpoint: event ``seq`` exists and has that hash. Auditors keep
the public key and check the checkpoints' signatures without the database
(``manage.py verify_audit --anchors-only DIR --public-key KEY``).
"""

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, storages

from .models import AccessEvent

PREFIX = "audit-anchors/"


class AnchorError(Exception):
    """A public key or checkpoint directory that cannot be used (the message says why)."""


def _b64decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64encode(raw):
    return base64.urlsafe_b64encode(raw).decode()


def private_key():
    return Ed25519PrivateKey.from_private_bytes(_b64decode(settings.AUDIT_ANCHOR_KEY))


def public_key_text(key=None):
    """The public key an auditor keeps: URL-safe base64 of its 32 raw bytes."""
    key = key or private_key().public_key()
    return _b64encode(key.public_bytes(Encoding.Raw, PublicFormat.Raw))


def parse_public_key(text):
    try:
        raw = _b64decode(text.strip())
    except ValueError as error:
        raise AnchorError(f"the public key is not URL-safe base64 ({error})") from error
    if len(raw) != 32:
        raise AnchorError(f"the public key must decode to 32 bytes, got {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


def _storage(directory=None):
    """The storage and the name prefix checkpoints are kept under."""
    directory = directory or settings.AUDIT_ANCHOR_DIR
    if directory:
        return FileSystemStorage(location=directory), ""
    return storages["recordings"], PREFIX


def _signed_content(seq, hash_, anchored_at):
    content = {"seq": seq, "hash": hash_, "anchored_at": anchored_at}
    return json.dumps(content, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Checkpoint:
    name: str
    seq: int
    hash: str
    anchored_at: str
    signature_ok: bool
    problem: str = ""


def anchor(*, now=None):
    """Sign the chain head and write it as a checkpoint; return it, or None if there is nothing
    new to anchor (an empty trail, or the head already anchored).

    Guarantees: a checkpoint is never overwritten (one file per ``seq``); it is signed over
    canonical JSON of ``seq``, ``hash`` and ``anchored_at`` (UTC, ISO 8601).
    """
    head = AccessEvent.objects.order_by("-seq").values_list("seq", "hash").first()
    if head is None:
        return None
    seq, hash_ = head
    storage, prefix = _storage()
    name = f"{prefix}{seq:012d}.json"
    if storage.exists(name):
        return None
    anchored_at = (now or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="seconds")
    key = private_key()
    document = {
        "seq": seq,
        "hash": hash_,
        "anchored_at": anchored_at,
        "public_key": public_key_text(key.public_key()),
        "signature": _b64encode(key.sign(_signed_content(seq, hash_, anchored_at))),
    }
    storage.save(name, ContentFile(json.dumps(document, indent=2).encode()))
    return Checkpoint(name, seq, hash_, anchored_at, signature_ok=True)


def _checkpoint_names(storage, prefix, directory=None):
    """The checkpoints' file names, in order (zero-padded ``seq``s: the last is the newest)."""
    try:
        _dirs, files = storage.listdir(prefix.rstrip("/"))
    except FileNotFoundError:
        if directory:  # named by the auditor, so it must exist
            raise AnchorError(f"no such directory: {directory}") from None
        return []  # nothing anchored yet
    return [f"{prefix}{filename}" for filename in sorted(files) if filename.endswith(".json")]


def _read(storage, name, public_key):
    with storage.open(name, "rb") as file:
        return _read_one(name, file.read(), public_key)


def read_checkpoints(*, public_key=None, directory=None):
    """Every checkpoint, oldest ``seq`` first, with whether its signature verifies under
    ``public_key`` (default: the public half of ``AUDIT_ANCHOR_KEY``)."""
    public_key = public_key or private_key().public_key()
    storage, prefix = _storage(directory)
    checkpoints = [
        _read(storage, name, public_key) for name in _checkpoint_names(storage, prefix, directory)
    ]
    return sorted(checkpoints, key=lambda checkpoint: (checkpoint.seq, checkpoint.name))


def latest_checkpoint(*, public_key=None):
    """The newest checkpoint, read alone (a page shows it without reading every checkpoint or
    walking the chain), or None before the first."""
    storage, prefix = _storage()
    names = _checkpoint_names(storage, prefix)
    if not names:
        return None
    return _read(storage, names[-1], public_key or private_key().public_key())


def _read_one(name, raw, public_key):
    try:
        document = json.loads(raw)
        seq, hash_, anchored_at = document["seq"], document["hash"], document["anchored_at"]
        signature = _b64decode(document["signature"])
        if not isinstance(seq, int) or not isinstance(hash_, str):
            raise TypeError("seq must be a number and hash a string")
    except (ValueError, KeyError, TypeError) as error:
        return Checkpoint(name, -1, "", "", False, f"checkpoint {name} is unreadable ({error})")
    try:
        public_key.verify(signature, _signed_content(seq, hash_, anchored_at))
    except InvalidSignature:
        return Checkpoint(
            name,
            seq,
            hash_,
            anchored_at,
            False,
            f"checkpoint {name} (event {seq}, anchored at {anchored_at}): its signature does "
            "not verify with the anchor key (forged or altered)",
        )
    return Checkpoint(name, seq, hash_, anchored_at, True)


def check_chain_against_checkpoints(checkpoints):
    """The problems, oldest checkpoint first: a bad signature, an event whose hash differs from
    a checkpoint (the chain was rewritten), a chain shorter than a checkpoint (the newest
    events were deleted). An empty list when the chain agrees with every checkpoint."""
    problems = []
    hashes = {}
    seqs = [checkpoint.seq for checkpoint in checkpoints if checkpoint.signature_ok]
    for start in range(0, len(seqs), 1000):
        rows = AccessEvent.objects.filter(seq__in=seqs[start : start + 1000])
        hashes.update(rows.values_list("seq", "hash"))
    last_seq = AccessEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    for checkpoint in checkpoints:
        if not checkpoint.signature_ok:
            problems.append(checkpoint.problem)
            continue
        where = f"checkpoint {checkpoint.name} (event {checkpoint.seq}, anchored at " + (
            f"{checkpoint.anchored_at})"
        )
        if checkpoint.seq not in hashes:
            if checkpoint.seq > last_seq:
                problems.append(
                    f"{where}: the trail ends at event {last_seq} (the newest events were deleted)"
                )
            else:
                problems.append(f"{where}: event {checkpoint.seq} is missing")
        elif hashes[checkpoint.seq] != checkpoint.hash:
            problems.append(
                f"{where}: event {checkpoint.seq}'s hash differs from the checkpoint's (the "
                "chain was rewritten)"
            )
    return problems
