"""Decrypted audio, streamed with HTTP Range support, never written to disk.

A recording is served as the WAV Twilio made (both channels), or one side of it as a mono
WAV built on the fly: with ``record-from-answer-dual`` the first channel is the caller (the
customer) and the second the operator. Every byte range of either maps onto the encrypted
segments it needs, so seeking in an hour of audio reads a few 64 KiB segments.
"""

import hashlib
import re
import struct
import zipfile
from dataclasses import dataclass

from django.core.files.storage import storages
from django.utils import timezone

from . import crypto

READ_CHUNK = 256 * 1024
WAV_HEADER = struct.Struct("<4sI4s4sIHHIIHH4sI")
BOTH, CUSTOMER, OPERATOR = "both", "customer", "operator"
CHANNELS = {BOTH: None, CUSTOMER: 0, OPERATOR: 1}
RANGE = re.compile(r"bytes=([0-9]*)-([0-9]*)")


class RangeNotSatisfiable(Exception):
    """The Range header asks for bytes the audio does not have, or cannot be read."""


class ChannelNotAvailable(Exception):
    """One side was asked for, but the recording is not two-channel 16-bit PCM."""


def parse_range(header, size):
    """The ``(start, end)`` (end exclusive) a Range header asks for, or ``None`` for all.

    Single ranges only: ``bytes=a-b``, ``bytes=a-`` and suffix ranges ``bytes=-n``. Other
    units, and several ranges at once, are ignored (the whole audio is sent), as HTTP allows.
    """
    if not header or not header.strip().lower().startswith("bytes="):
        return None
    spec = header.strip()
    if "," in spec:
        return None
    match = RANGE.fullmatch(spec.replace(" ", "").lower())
    if not match or match.groups() == ("", ""):
        raise RangeNotSatisfiable(header)
    first, last = match.groups()
    if first == "":  # the last n bytes
        length = _position(last)
        if length == 0 or size == 0:
            raise RangeNotSatisfiable(header)
        return max(size - length, 0), size
    start = _position(first)
    end = size if last == "" else min(_position(last) + 1, size)
    if start >= size or (last != "" and _position(last) < start):
        raise RangeNotSatisfiable(header)
    return start, end


# No audio has 10**18 bytes. A longer number is "past the end", and never reaches int():
# Python refuses to convert more than 4,300 digits (ValueError), and a client may send more.
_MAX_POSITION_DIGITS = 18


def _position(digits):
    digits = digits.lstrip("0") or "0"
    if len(digits) > _MAX_POSITION_DIGITS:
        return 10**_MAX_POSITION_DIGITS
    return int(digits)


@dataclass
class WavLayout:
    channels: int
    sample_rate: int
    bits: int
    data_offset: int
    data_size: int


def wav_layout(head):
    """Where the samples are in a WAV file, from its first bytes (RIFF chunks walked)."""
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    offset, fmt = 12, None
    while offset + 8 <= len(head):
        chunk_id, chunk_size = struct.unpack_from("<4sI", head, offset)
        body = offset + 8
        if chunk_id == b"fmt " and body + 16 <= len(head):
            audio_format, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", head, body)
            fmt = (audio_format, channels, rate, bits)
        elif chunk_id == b"data":
            if fmt is None or fmt[0] != 1:
                return None
            return WavLayout(fmt[1], fmt[2], fmt[3], body, chunk_size)
        offset = body + chunk_size + (chunk_size & 1)
    return None


class AudioSource:
    """The audio of one stored recording, as one of its views (both sides, or one)."""

    content_type = "audio/wav"

    def __init__(self, recording, channel=BOTH):
        self.recording = recording
        self.channel = channel
        self.key = crypto.unwrap_key(recording.key_id, bytes(recording.wrapped_key))
        self.blob = storages["recordings"].open(recording.blob_name, "rb")
        try:
            self.plaintext_size = crypto.blob_plaintext_size(self.blob)
            self.side = CHANNELS[channel]
            if self.side is None:
                self.size = self.plaintext_size
            else:
                self._prepare_side()
        except Exception:
            self.close()
            raise

    def _prepare_side(self):
        head = b"".join(
            crypto.decrypt_range(self.blob, self.key, 0, min(4096, self.plaintext_size))
        )
        layout = wav_layout(head)
        if layout is None or layout.channels != 2 or layout.bits != 16:
            raise ChannelNotAvailable(self.recording.sid)
        data_size = min(layout.data_size, self.plaintext_size - layout.data_offset)
        self.layout = layout
        self.frames = data_size // 4
        mono_size = self.frames * 2
        self.header = WAV_HEADER.pack(
            b"RIFF",
            36 + mono_size,
            b"WAVE",
            b"fmt ",
            16,
            1,
            1,
            layout.sample_rate,
            layout.sample_rate * 2,
            2,
            16,
            b"data",
            mono_size,
        )
        self.size = len(self.header) + mono_size

    def read(self, start=0, end=None):
        """Yield the bytes ``[start, end)`` of this view."""
        end = self.size if end is None else end
        if self.side is None:
            yield from crypto.decrypt_range(self.blob, self.key, start, end)
            return
        header_size = len(self.header)
        if start < header_size:
            yield self.header[start : min(end, header_size)]
            start = header_size
        if start >= end:
            return
        # Output byte d of the samples is byte d % 2 of frame d // 2's sample on our side.
        first, last = start - header_size, end - header_size
        frame, last_frame = first // 2, -(-last // 2)
        while frame < last_frame:
            frames = min(READ_CHUNK // 4, last_frame - frame)
            offset = self.layout.data_offset + frame * 4
            stereo = b"".join(
                crypto.decrypt_range(self.blob, self.key, offset, offset + frames * 4)
            )
            mono = bytearray(len(stereo) // 2)
            mono[0::2] = stereo[self.side * 2 :: 4]
            mono[1::2] = stereo[self.side * 2 + 1 :: 4]
            skip = first - frame * 2 if frame * 2 < first else 0
            keep = min(len(mono), last - frame * 2)
            yield bytes(mono[skip:keep])
            frame += frames

    def close(self):
        self.blob.close()


class _Pipe:
    """A write-only, unseekable file whose writes are collected for the next yield."""

    def __init__(self):
        self.pieces = []
        self.written = 0

    def write(self, data):
        self.pieces.append(bytes(data))
        self.written += len(data)
        return len(data)

    def tell(self):
        return self.written

    def flush(self):
        pass

    def take(self):
        pieces, self.pieces = self.pieces, []
        return b"".join(pieces)


class ZipStream:
    """A ZIP archive made while it is sent, for every download of audio in a ZIP: the
    customer's copy (portal), the export for a third party and the evidence package.

    Members are stored, not compressed (audio does not compress, and a reader can check each
    member's bytes). Each ``add_*`` is a generator of the bytes ready to send (``yield from``
    it); ``members`` lists every member written so far with its SHA-256 and size, for a
    manifest. Audio is decrypted a segment at a time and never held whole in the clear.
    """

    def __init__(self, *, date_time):
        self.date_time = date_time
        self.members = []
        self._pipe = _Pipe()
        self._archive = zipfile.ZipFile(self._pipe, "w", compression=zipfile.ZIP_STORED)

    def add_bytes(self, name, content):
        self._archive.writestr(zipfile.ZipInfo(name, date_time=self.date_time), content)
        self._listed(name, hashlib.sha256(content), len(content))
        yield self._pipe.take()

    def add_audio(self, name, source):
        """The audio of ``source`` (an ``AudioSource``, closed when done) as member ``name``."""
        digest, size = hashlib.sha256(), 0
        try:
            info = zipfile.ZipInfo(name, date_time=self.date_time)
            with self._archive.open(info, "w", force_zip64=True) as entry:
                for chunk in source.read():
                    entry.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                    yield self._pipe.take()
        finally:
            source.close()
        self._listed(name, digest, size)

    def close(self):
        self._archive.close()
        yield self._pipe.take()

    def _listed(self, name, digest, size):
        self.members.append({"name": name, "sha256": digest.hexdigest(), "size": size})


def zip_date_time(recording):
    """The time stamp of a recording's ZIP members: when its call started (local time)."""
    started = recording.call.started_at or recording.created_at
    return timezone.localtime(started).timetuple()[:6]


def zip_with_audio(text_name, text, recording=None):
    """A ZIP of a text file, then (given ``recording``) its audio, both sides as a WAV. The
    customer's copy (portal) and the export for a third party (provision) are both this."""
    source = AudioSource(recording, BOTH) if recording is not None else None
    stamp = timezone.localtime().timetuple()[:6] if recording is None else zip_date_time(recording)
    stream = ZipStream(date_time=stamp)
    try:
        yield from stream.add_bytes(text_name, text.encode())
        if source is not None:
            yield from stream.add_audio(f"{recording.sid}.wav", source)
            source = None
        yield from stream.close()
    finally:
        if source is not None:
            source.close()
