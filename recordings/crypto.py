"""Recordings at rest: AES-256-GCM in fixed-size segments, so any byte range can be read.

Envelope encryption: every recording has a random 32-byte data key; the database keeps it only
wrapped (AES-GCM) by the newest master key of ``RECORDINGS_MASTER_KEYS``, with that key's id.

Blob format (all integers big-endian)::

    header  = b"CCREC" ‖ version (1 byte, 1) ‖ segment size (4) ‖ salt (16) ‖ nonce prefix (7)
    segment = AES-256-GCM(segment key, nonce, plaintext[i·S : (i+1)·S], aad=header) ‖ tag (16)

    segment key = HKDF-SHA256(data key, salt, info=b"recording segments v1")
    nonce       = nonce prefix (7) ‖ segment number (4) ‖ last-segment flag (1: 0x01 or 0x00)

Every segment but the last holds exactly S plaintext bytes; the last holds 1..S bytes (0 for
an empty recording) and is the only one sealed with the flag 0x01. Authenticating the header
in every segment, numbering the segments in their nonces and flagging the last one make a
changed header, a flipped byte, reordered or missing segments, a cut and appended data all
fail to decrypt.
"""

import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SEGMENT_SIZE = 64 * 1024
MAGIC = b"CCREC"
VERSION = 1
HEADER = struct.Struct(">5sBI16s7s")
HEADER_SIZE = HEADER.size
TAG_SIZE = 16
HKDF_INFO = b"recording segments v1"
WRAP_AAD = b"recording data key v1"


class RecordingIntegrityError(Exception):
    """The stored recording or its wrapped key is damaged, cut, reordered or not ours."""


class UnknownMasterKey(Exception):
    """A wrapped key names a master key that is not in RECORDINGS_MASTER_KEYS."""


# --- keys ----------------------------------------------------------------------------------


def new_data_key():
    return os.urandom(32)


def _master_keys():
    from django.conf import settings

    return settings.RECORDINGS_MASTER_KEYS


def wrap_key(data_key):
    """Wrap ``data_key`` with the newest master key; return ``(key_id, wrapped)``."""
    key_id, master = _master_keys()[0]
    nonce = os.urandom(12)
    return key_id, nonce + AESGCM(master).encrypt(nonce, data_key, WRAP_AAD + key_id.encode())


def unwrap_key(key_id, wrapped):
    master = dict(_master_keys()).get(key_id)
    if master is None:
        raise UnknownMasterKey(
            f"master key {key_id!r} is not in RECORDINGS_MASTER_KEYS; add it back to read "
            "recordings wrapped with it"
        )
    wrapped = bytes(wrapped)
    try:
        return AESGCM(master).decrypt(wrapped[:12], wrapped[12:], WRAP_AAD + key_id.encode())
    except InvalidTag:
        raise RecordingIntegrityError(f"wrapped key does not open with {key_id!r}") from None


def rewrap_key(key_id, wrapped):
    """The same data key, wrapped with the newest master key (unchanged if it already is)."""
    if key_id == _master_keys()[0][0]:
        return key_id, bytes(wrapped)
    return wrap_key(unwrap_key(key_id, wrapped))


# --- sizes ---------------------------------------------------------------------------------


def _segment_count(plaintext_size, segment_size):
    return max(1, -(-plaintext_size // segment_size))


def ciphertext_size(plaintext_size, *, segment_size=SEGMENT_SIZE):
    return HEADER_SIZE + plaintext_size + _segment_count(plaintext_size, segment_size) * TAG_SIZE


def plaintext_size(size, *, segment_size=SEGMENT_SIZE):
    """The plaintext size a blob of ``size`` bytes holds, or an error if none can."""
    full, rest = divmod(size - HEADER_SIZE, segment_size + TAG_SIZE)
    if size - HEADER_SIZE < TAG_SIZE or 0 < rest < TAG_SIZE:
        raise RecordingIntegrityError("the stored recording is cut short")
    return full * segment_size + (rest - TAG_SIZE if rest else 0)


# --- encryption ----------------------------------------------------------------------------


def _segment_cipher(data_key, salt):
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=HKDF_INFO)
    return AESGCM(hkdf.derive(data_key))


def _nonce(prefix, number, last):
    return prefix + struct.pack(">IB", number, 1 if last else 0)


class Encryptor:
    """Streaming encryption: ``update`` as data arrives, then ``finalize`` once."""

    def __init__(self, data_key, *, segment_size=SEGMENT_SIZE):
        self.segment_size = segment_size
        salt, self.prefix = os.urandom(16), os.urandom(7)
        self.header = HEADER.pack(MAGIC, VERSION, segment_size, salt, self.prefix)
        self.cipher = _segment_cipher(data_key, salt)
        self.buffer = bytearray()
        self.number = 0
        self.started = False
        self.finished = False

    def _seal(self, plaintext, last):
        sealed = self.cipher.encrypt(_nonce(self.prefix, self.number, last), plaintext, self.header)
        self.number += 1
        return sealed

    def _start(self):
        if self.finished:
            raise ValueError("the recording is already finalized")
        if self.started:
            return b""
        self.started = True
        return self.header

    def update(self, chunk):
        return b"".join(self.segments(chunk))

    def segments(self, chunk):
        """Seal what ``chunk`` completes, segment by segment, without copying whole segments
        that arrive in one piece."""
        header = self._start()
        if header:
            yield header
        view = memoryview(chunk)
        size = self.segment_size
        if self.buffer:
            # Keep at least one byte back: only finalize knows which segment is the last.
            if len(self.buffer) + len(view) <= size:
                self.buffer += view
                return
            missing = size - len(self.buffer)
            self.buffer += view[:missing]
            view = view[missing:]
            yield self._seal(self.buffer, last=False)
            self.buffer = bytearray()
        while len(view) > size:
            yield self._seal(view[:size], last=False)
            view = view[size:]
        self.buffer += view

    def finalize(self):
        out = self._start() + self._seal(self.buffer, last=True)
        self.buffer = bytearray()
        self.finished = True
        return out


def encrypt_chunks(chunks, data_key, *, segment_size=SEGMENT_SIZE):
    """Yield the blob for the plaintext ``chunks``: the header, then each sealed segment."""
    encryptor = Encryptor(data_key, segment_size=segment_size)
    for chunk in chunks:
        yield from encryptor.segments(chunk)
    yield encryptor.finalize()


# --- decryption ----------------------------------------------------------------------------


def read_header(blob):
    blob.seek(0)
    header = blob.read(HEADER_SIZE)
    if len(header) != HEADER_SIZE:
        raise RecordingIntegrityError("the stored recording has no complete header")
    magic, version, segment_size, salt, prefix = HEADER.unpack(header)
    if magic != MAGIC or version != VERSION or segment_size == 0:
        raise RecordingIntegrityError("the stored file is not an encrypted recording")
    return header, segment_size, salt, prefix


def _blob_size(blob):
    blob.seek(0, os.SEEK_END)
    return blob.tell()


def blob_plaintext_size(blob):
    _, segment_size, _, _ = read_header(blob)
    return plaintext_size(_blob_size(blob), segment_size=segment_size)


def decrypt_range(blob, data_key, start=0, end=None):
    """Yield plaintext bytes ``[start, end)``, reading only the segments they lie in."""
    header, segment_size, salt, prefix = read_header(blob)
    total = plaintext_size(_blob_size(blob), segment_size=segment_size)
    end = total if end is None else min(end, total)
    if start < 0 or start > end or (start >= total and total > 0):
        raise ValueError(f"range {start}-{end} is outside the recording's {total} bytes")
    cipher = _segment_cipher(data_key, salt)
    last_number = _segment_count(total, segment_size) - 1
    first = start // segment_size
    final = last_number if end == total else (end - 1) // segment_size
    if start == end and total:
        return
    for number in range(first, final + 1):
        blob.seek(HEADER_SIZE + number * (segment_size + TAG_SIZE))
        sealed = blob.read(segment_size + TAG_SIZE)
        last = number == last_number
        try:
            plaintext = cipher.decrypt(_nonce(prefix, number, last), sealed, header)
        except InvalidTag:
            raise RecordingIntegrityError(
                f"segment {number} does not authenticate: the recording was changed, "
                "reordered, cut or extended, or the key is wrong"
            ) from None
        offset = number * segment_size
        yield plaintext[max(start - offset, 0) : end - offset]


def decrypt_all(blob, data_key):
    yield from decrypt_range(blob, data_key, 0, None)
