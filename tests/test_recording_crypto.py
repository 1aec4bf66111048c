"""The encrypted recording format: round trips, ranges read from their own segments only,
every kind of damage fails loudly, and the envelope's master keys rotate."""

import io
import os

import pytest

from recordings import crypto

SEGMENT = 1024  # small segments, so a few KiB span many of them


def encrypt(plaintext, key, *, segment_size=SEGMENT, chunk=700):
    chunks = (plaintext[i : i + chunk] for i in range(0, len(plaintext), chunk))
    return b"".join(crypto.encrypt_chunks(chunks, key, segment_size=segment_size))


def decrypt(blob, key, start=0, end=None):
    return b"".join(crypto.decrypt_range(io.BytesIO(blob), key, start, end))


@pytest.fixture
def key():
    return crypto.new_data_key()


@pytest.mark.parametrize(
    "size",
    [0, 1, SEGMENT - 1, SEGMENT, SEGMENT + 1, 3 * SEGMENT, 3 * SEGMENT + 17],
)
def test_round_trip_at_every_segment_boundary(key, size):
    plaintext = os.urandom(size)

    blob = encrypt(plaintext, key)

    assert decrypt(blob, key) == plaintext
    assert len(blob) == crypto.ciphertext_size(size, segment_size=SEGMENT)
    assert crypto.plaintext_size(len(blob), segment_size=SEGMENT) == size
    assert crypto.blob_plaintext_size(io.BytesIO(blob)) == size


def test_chunking_of_the_input_does_not_change_what_decrypts(key):
    plaintext = os.urandom(5 * SEGMENT + 3)

    for chunk in (1, 100, SEGMENT, 10 * SEGMENT):
        assert decrypt(encrypt(plaintext, key, chunk=chunk), key) == plaintext


def test_the_same_audio_encrypts_differently_every_time(key):
    plaintext = b"RIFF" + os.urandom(3000)

    first, second = encrypt(plaintext, key), encrypt(plaintext, key)

    assert first != second
    assert plaintext[:64] not in first


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (0, 1),
        (0, SEGMENT),
        (SEGMENT - 1, SEGMENT + 1),
        (SEGMENT, 2 * SEGMENT),
        (1500, 3100),
        (4000, None),
        (4 * SEGMENT + 99, 4 * SEGMENT + 100),
        (0, 10**9),
    ],
)
def test_any_byte_range_decrypts(key, start, end):
    plaintext = os.urandom(4 * SEGMENT + 100)
    blob = encrypt(plaintext, key)

    assert decrypt(blob, key, start, end) == plaintext[start:end]


class CountingFile(io.BytesIO):
    """A file that notes which offsets were read."""

    def __init__(self, data):
        super().__init__(data)
        self.read_at = []

    def read(self, size=-1):
        self.read_at.append(self.tell())
        return super().read(size)


def test_a_range_reads_only_the_segments_it_lies_in(key):
    plaintext = os.urandom(100 * SEGMENT)
    blob = CountingFile(encrypt(plaintext, key))
    sealed = SEGMENT + crypto.TAG_SIZE

    data = b"".join(crypto.decrypt_range(blob, key, 50 * SEGMENT + 10, 51 * SEGMENT + 10))

    assert data == plaintext[50 * SEGMENT + 10 : 51 * SEGMENT + 10]
    segments_read = [
        (offset - crypto.HEADER_SIZE) // sealed
        for offset in blob.read_at
        if offset >= crypto.HEADER_SIZE
    ]
    assert segments_read == [50, 51]


def test_a_range_outside_the_recording_is_refused(key):
    blob = encrypt(os.urandom(100), key)

    with pytest.raises(ValueError, match="outside"):
        decrypt(blob, key, 100, 200)
    with pytest.raises(ValueError, match="outside"):
        decrypt(blob, key, 50, 10)


# --- damage ----------------------------------------------------------------------------------


@pytest.fixture
def sealed(key):
    plaintext = os.urandom(4 * SEGMENT + 100)
    return plaintext, encrypt(plaintext, key)


def segment_span(number):
    start = crypto.HEADER_SIZE + number * (SEGMENT + crypto.TAG_SIZE)
    return start, start + SEGMENT + crypto.TAG_SIZE


def flip(blob, offset):
    damaged = bytearray(blob)
    damaged[offset] ^= 0x01
    return bytes(damaged)


@pytest.mark.parametrize(
    "offset",
    [
        crypto.HEADER_SIZE,  # first byte of the first segment
        crypto.HEADER_SIZE + 2 * (SEGMENT + crypto.TAG_SIZE) + 500,  # mid-file audio
        -1,  # last byte of the last tag
    ],
)
def test_a_flipped_byte_fails_loudly(key, sealed, offset):
    _, blob = sealed

    with pytest.raises(crypto.RecordingIntegrityError, match="does not authenticate"):
        decrypt(flip(blob, offset % len(blob)), key)


@pytest.mark.parametrize("offset", [6, 10, 20, crypto.HEADER_SIZE - 1])
def test_a_changed_header_fails_loudly(key, sealed, offset):
    """Segment size, salt and nonce prefix are all authenticated with every segment."""
    _, blob = sealed

    with pytest.raises(crypto.RecordingIntegrityError):
        decrypt(flip(blob, offset), key)


def test_a_changed_magic_is_not_taken_for_a_recording(key, sealed):
    _, blob = sealed

    with pytest.raises(crypto.RecordingIntegrityError, match="not an encrypted recording"):
        decrypt(b"RIFF" + blob[4:], key)


def test_swapped_segments_fail(key, sealed):
    _, blob = sealed
    a, b = segment_span(1), segment_span(2)
    swapped = blob[: a[0]] + blob[b[0] : b[1]] + blob[a[0] : a[1]] + blob[b[1] :]

    with pytest.raises(crypto.RecordingIntegrityError, match="segment 1"):
        decrypt(swapped, key)


def test_a_missing_middle_segment_fails(key, sealed):
    _, blob = sealed
    start, end = segment_span(1)

    with pytest.raises(crypto.RecordingIntegrityError):
        decrypt(blob[:start] + blob[end:], key)


def test_a_file_cut_at_a_segment_boundary_fails(key, sealed):
    """The new last segment was not sealed as the last one."""
    _, blob = sealed
    _, end = segment_span(2)

    with pytest.raises(crypto.RecordingIntegrityError, match="segment 2"):
        decrypt(blob[:end], key)


def test_a_file_cut_inside_a_tag_fails(key, sealed):
    _, blob = sealed
    _, end = segment_span(2)

    with pytest.raises(crypto.RecordingIntegrityError, match="cut short"):
        decrypt(blob[: end + 5], key)


def test_a_header_alone_fails(key, sealed):
    _, blob = sealed

    with pytest.raises(crypto.RecordingIntegrityError):
        decrypt(blob[: crypto.HEADER_SIZE], key)
    with pytest.raises(crypto.RecordingIntegrityError, match="header"):
        decrypt(blob[:10], key)


def test_appended_data_fails(key, sealed):
    _, blob = sealed

    with pytest.raises(crypto.RecordingIntegrityError):
        decrypt(blob + os.urandom(SEGMENT + crypto.TAG_SIZE), key)


def test_a_segment_from_another_recording_fails(key, sealed):
    plaintext, blob = sealed
    other = encrypt(plaintext, key)
    start, end = segment_span(1)

    with pytest.raises(crypto.RecordingIntegrityError, match="segment 1"):
        decrypt(blob[:start] + other[start:end] + blob[end:], key)


def test_the_wrong_key_fails(sealed):
    _, blob = sealed

    with pytest.raises(crypto.RecordingIntegrityError):
        decrypt(blob, crypto.new_data_key())


def test_undamaged_ranges_of_a_damaged_file_still_read(key, sealed):
    """Damage is reported where it is: a seek elsewhere still plays."""
    plaintext, blob = sealed
    damaged = flip(blob, segment_span(3)[0] + 7)

    assert decrypt(damaged, key, 0, SEGMENT) == plaintext[:SEGMENT]
    with pytest.raises(crypto.RecordingIntegrityError, match="segment 3"):
        decrypt(damaged, key, 3 * SEGMENT, 3 * SEGMENT + 1)


def test_an_encryptor_cannot_be_used_after_finalize(key):
    encryptor = crypto.Encryptor(key, segment_size=SEGMENT)
    encryptor.update(b"abc")
    encryptor.finalize()

    with pytest.raises(ValueError, match="finalized"):
        encryptor.update(b"more")


# --- the envelope: wrapped data keys and master key rotation ----------------------------------


def master(key_id, fill):
    return (key_id, bytes([fill]) * 32)


def test_a_data_key_is_wrapped_by_the_newest_master_key(settings, key):
    settings.RECORDINGS_MASTER_KEYS = [master("new", 2), master("old", 1)]

    key_id, wrapped = crypto.wrap_key(key)

    assert key_id == "new"
    assert key not in wrapped
    assert crypto.unwrap_key(key_id, wrapped) == key


def test_rewrapping_moves_a_key_to_the_newest_master_key(settings, key):
    settings.RECORDINGS_MASTER_KEYS = [master("old", 1)]
    old_id, old_wrapped = crypto.wrap_key(key)
    settings.RECORDINGS_MASTER_KEYS = [master("new", 2), master("old", 1)]

    new_id, new_wrapped = crypto.rewrap_key(old_id, old_wrapped)

    assert new_id == "new"
    assert crypto.unwrap_key(new_id, new_wrapped) == key
    assert crypto.rewrap_key(new_id, new_wrapped) == (new_id, new_wrapped)
    settings.RECORDINGS_MASTER_KEYS = [master("new", 2)]
    assert crypto.unwrap_key(new_id, new_wrapped) == key
    with pytest.raises(crypto.UnknownMasterKey, match="'old'"):
        crypto.unwrap_key(old_id, old_wrapped)


def test_a_wrapped_key_does_not_open_under_another_master_key_id(settings, key):
    settings.RECORDINGS_MASTER_KEYS = [master("a", 1), master("b", 1)]
    key_id, wrapped = crypto.wrap_key(key)
    assert key_id == "a"

    # Same key material, other id: the id is authenticated with the wrapped key.
    with pytest.raises(crypto.RecordingIntegrityError, match="'b'"):
        crypto.unwrap_key("b", wrapped)


def test_a_damaged_wrapped_key_fails(settings, key):
    settings.RECORDINGS_MASTER_KEYS = [master("a", 1)]
    key_id, wrapped = crypto.wrap_key(key)

    with pytest.raises(crypto.RecordingIntegrityError):
        crypto.unwrap_key(key_id, flip(wrapped, 20))
