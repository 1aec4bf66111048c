"""Rotating the master key re-wraps every recording's data key and leaves the audio alone."""

import hashlib
import io

import pytest
from django.core.management import call_command

from recordings import ingest

from .factories import consented_call
from .helpers.recordings import completed, decrypted, stored_files

pytestmark = pytest.mark.django_db


def test_rotation_rewraps_every_key_without_touching_the_audio(
    client, twilio, operator, notice, settings
):
    settings.RECORDINGS_MASTER_KEYS = [("old", b"o" * 32)]
    recordings = [
        ingest.fetch(completed(client, twilio, consented_call(operator)).pk) for _ in range(3)
    ]
    files = {path: path.read_bytes() for path in stored_files()}
    settings.RECORDINGS_MASTER_KEYS = [("new", b"n" * 32), ("old", b"o" * 32)]

    out = io.StringIO()
    call_command("rotate_recording_keys", "--batch-size", "2", stdout=out)

    assert "3 recording key(s) re-wrapped under new" in out.getvalue()
    assert {path: path.read_bytes() for path in stored_files()} == files
    settings.RECORDINGS_MASTER_KEYS = [("new", b"n" * 32)]  # the old key can now go
    for recording in recordings:
        recording.refresh_from_db()
        assert recording.key_id == "new"
        assert hashlib.sha256(decrypted(recording)).hexdigest() == recording.plaintext_sha256

    call_command("rotate_recording_keys", stdout=out)
    assert "0 recording key(s) re-wrapped" in out.getvalue()
