"""Twilio's Voice Recording Encryption, end to end with the local emulator over HTTP: Twilio
encrypts each recording with our public key (AES-256-GCM content key wrapped with
RSA-OAEP-SHA-256); the fetch unwraps it with our private key and decrypts the download
straight into our own encryption, storing the copy only once Twilio's GCM tag has verified.
A flipped byte, a wrong key or a key we do not hold keeps Twilio's copy, stores nothing and
alerts staff; no plaintext audio is on disk at any moment."""

import threading

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.core import mail
from django.core.management import call_command
from django.urls import reverse

import twilio_client
from recordings import ingest
from recordings.models import Recording
from recordings.playback import BOTH, AudioSource
from recordings.tasks import fetch_recording
from twilio_emulator.server import synthetic_wav

from .factories import UserFactory, consented_call
from .helpers.recordings import (
    completed,
    decrypted,
    media,
    media_requests,
    stored_files,
    twilio_copy,
    waiting,
)

pytestmark = pytest.mark.django_db

Status = Recording.Status
SECONDS = 2
AUDIO = synthetic_wav(SECONDS)  # what the emulator records: the same bytes every time


def key_pair():
    # 2048 bits keeps the tests quick; `twilio_recording_key create` makes 3072-bit keys.
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(key):
    public = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def registered(twilio, key, *, use=True):
    """Register ``key``'s public half with Twilio (our client, over HTTP), and have Twilio
    encrypt new recordings with it (the console's setting, here the emulator's control)."""
    sid = twilio_client.create_public_key(public_key_pem=public_pem(key), friendly_name="test")[
        "sid"
    ]
    if use:
        twilio.state.control("POST", "/_emulator/recording-encryption", {"public_key_sid": sid})
    return sid


@pytest.fixture
def call(notice, operator):
    return consented_call(operator)


@pytest.fixture
def encrypting(twilio, settings):
    """Encryption on: Twilio encrypts with our public key, and we hold the private key."""
    key = key_pair()
    sid = registered(twilio, key)
    settings.TWILIO_RECORDING_PRIVATE_KEYS = {sid: key}
    return sid


@pytest.fixture
def staff_with_email(db):
    from contactcenter.roles import SUPERVISOR

    return UserFactory(username="on-call", email="on-call@example.jp", roles=[SUPERVISOR])


def test_an_encrypted_recording_is_stored_playable_and_deleted_at_twilio(
    client, twilio, call, encrypting
):
    recording = completed(client, twilio, call, seconds=SECONDS)
    at_twilio = twilio_copy(twilio, recording)
    assert at_twilio["encryption_details"]["type"] == "rsa-aes"
    assert at_twilio["encryption_details"]["public_key_sid"] == encrypting
    assert AUDIO[:44] not in media(twilio, recording)  # nothing readable at Twilio
    assert len(media(twilio, recording)) == len(AUDIO) + 16

    ingest.fetch(recording.pk)
    recording.refresh_from_db()

    assert recording.status == Status.STORED
    assert decrypted(recording) == AUDIO
    assert recording.plaintext_size == len(AUDIO)
    assert twilio_copy(twilio, recording)["deleted"] is True
    source = AudioSource(recording, BOTH)
    try:
        assert b"".join(source.read()) == AUDIO
    finally:
        source.close()


@pytest.mark.parametrize(
    ("where", "flip_byte"), [("ciphertext", 100), ("tag", -1), ("first byte", 0)]
)
def test_a_changed_byte_keeps_twilios_copy_and_stores_nothing(
    client, twilio, call, encrypting, staff_with_email, tasks_in_process, where, flip_byte
):
    recording = completed(client, twilio, call, seconds=SECONDS, flip_byte=flip_byte)

    fetch_recording.delay(recording.pk)
    recording.refresh_from_db()

    assert recording.status == Status.FETCH_FAILED
    assert "GCM" in recording.last_error
    assert recording.blob_name == ""
    assert stored_files() == []
    assert twilio_copy(twilio, recording)["deleted"] is False
    assert media_requests(twilio, recording) == 1  # not retried: another try reads the same
    [alert] = mail.outbox
    assert alert.to == ["on-call@example.jp"]
    assert recording.sid in alert.subject
    assert "GCM" in alert.body


def test_a_wrong_private_key_keeps_twilios_copy_and_downloads_nothing(
    client, twilio, call, encrypting, settings, staff_with_email, tasks_in_process
):
    settings.TWILIO_RECORDING_PRIVATE_KEYS = {encrypting: key_pair()}
    recording = completed(client, twilio, call, seconds=SECONDS)

    fetch_recording.delay(recording.pk)
    recording.refresh_from_db()

    assert recording.status == Status.FETCH_FAILED
    assert "Twilio が使った鍵ではありません" in recording.last_error
    assert stored_files() == []
    assert media_requests(twilio, recording) == 0
    assert twilio_copy(twilio, recording)["deleted"] is False
    assert len(mail.outbox) == 1


def test_a_key_sid_we_hold_no_private_key_for_keeps_twilios_copy(
    client, twilio, call, encrypting, settings, staff_with_email, tasks_in_process
):
    settings.TWILIO_RECORDING_PRIVATE_KEYS = {}
    recording = completed(client, twilio, call, seconds=SECONDS)

    fetch_recording.delay(recording.pk)
    recording.refresh_from_db()

    assert recording.status == Status.FETCH_FAILED
    assert encrypting in recording.last_error
    assert "TWILIO_RECORDING_PRIVATE_KEYS" in recording.last_error
    assert stored_files() == []
    assert media_requests(twilio, recording) == 0
    assert twilio_copy(twilio, recording)["deleted"] is False
    assert encrypting in mail.outbox[0].body


def test_after_the_key_is_added_the_retry_stores_it(
    client, twilio, call, encrypting, settings, tasks_in_process
):
    key = settings.TWILIO_RECORDING_PRIVATE_KEYS[encrypting]
    settings.TWILIO_RECORDING_PRIVATE_KEYS = {}
    recording = completed(client, twilio, call, seconds=SECONDS)
    fetch_recording.delay(recording.pk)
    settings.TWILIO_RECORDING_PRIVATE_KEYS = {encrypting: key}

    ingest.fetch(recording.pk)
    recording.refresh_from_db()

    assert recording.status == Status.STORED
    assert decrypted(recording) == AUDIO


def test_keys_rotate_recordings_of_both_keys_are_fetched(
    client, twilio, settings, notice, operator
):
    old, new = key_pair(), key_pair()
    old_sid = registered(twilio, old)
    first = completed(client, twilio, consented_call(operator), seconds=SECONDS)
    new_sid = registered(twilio, new)  # the console now names the new key
    second = completed(client, twilio, consented_call(operator), seconds=SECONDS)
    assert twilio_copy(twilio, first)["encryption_details"]["public_key_sid"] == old_sid
    assert twilio_copy(twilio, second)["encryption_details"]["public_key_sid"] == new_sid
    settings.TWILIO_RECORDING_PRIVATE_KEYS = {new_sid: new, old_sid: old}

    for recording in (first, second):
        ingest.fetch(recording.pk)
        recording.refresh_from_db()
        assert recording.status == Status.STORED
        assert decrypted(recording) == AUDIO


def test_no_plaintext_audio_is_on_disk_at_any_moment(twilio, call, encrypting, settings):
    from pathlib import Path

    recording = waiting(twilio, call, seconds=SECONDS, trickle_seconds=2)
    root = Path(settings.STORAGES["recordings"]["OPTIONS"]["location"])
    # Pieces of the audio a file would hold if any of it were written in the clear.
    samples = [AUDIO[:44], *(AUDIO[at : at + 64] for at in range(1000, len(AUDIO) - 64, 4000))]
    found, scans, files_seen = [], 0, set()
    done = threading.Event()

    def scan():
        nonlocal scans
        while not done.is_set():
            for path in root.rglob("*"):
                if path.is_file():
                    files_seen.add(path.name)
                    try:
                        data = path.read_bytes()
                    except OSError:
                        continue
                    found.extend(path.name for sample in samples if sample in data)
            scans += 1

    scanner = threading.Thread(target=scan)
    scanner.start()
    try:
        ingest.fetch(recording.pk)
    finally:
        done.set()
        scanner.join()
    recording.refresh_from_db()
    assert recording.status == Status.STORED
    assert scans > 5 and files_seen  # the scanner saw the file while it was written
    assert found == []
    assert decrypted(recording) == AUDIO


def test_unencrypted_recordings_still_fetch_when_keys_are_configured(
    client, twilio, call, settings
):
    settings.TWILIO_RECORDING_PRIVATE_KEYS = {"CR" + "1" * 32: key_pair()}
    recording = completed(client, twilio, call, seconds=SECONDS)
    assert twilio_copy(twilio, recording).get("encryption_details") is None

    ingest.fetch(recording.pk)
    recording.refresh_from_db()

    assert recording.status == Status.STORED
    assert decrypted(recording) == AUDIO


def test_twilios_encryption_errors_are_explained_on_the_recording_page(
    client, twilio, call, supervisor
):
    from .helpers.recordings import at_twilio, callback

    resource = at_twilio(twilio, call)
    callback(client, call, resource, status="failed", ErrorCode="16105")
    recording = Recording.objects.get(sid=resource["sid"])
    client.force_login(supervisor)
    page = client.get(reverse("admin:recordings_recording_change", args=[recording.pk]))
    text = page.content.decode()
    assert "16105" in text
    assert "twilio_recording_key create" in text


# --- manage.py twilio_recording_key ---------------------------------------------------------


def test_create_registers_a_3072_bit_key_and_prints_its_private_key(twilio, capsys):
    call_command("twilio_recording_key", "create", "--friendly-name", "本番用")
    out = capsys.readouterr().out
    [key] = twilio.state.public_keys.values()
    assert key["friendly_name"] == "本番用"
    assert f"Public key registered with Twilio as {key['sid']}." in out
    assert f"TWILIO_RECORDING_PRIVATE_KEYS={key['sid']}:" in out
    pem = out[out.index("-----BEGIN PRIVATE KEY-----") : out.index("-----END PRIVATE KEY-----")]
    private = serialization.load_pem_private_key(
        (pem + "-----END PRIVATE KEY-----\n").encode(), password=None
    )
    assert private.key_size == 3072
    assert public_pem(private) == key["pem"]


def test_create_can_write_the_private_key_to_a_new_file_only(twilio, tmp_path, capsys):
    target = tmp_path / "recordings-key.pem"
    call_command("twilio_recording_key", "create", "--private-key-file", str(target))
    out = capsys.readouterr().out
    assert "BEGIN PRIVATE KEY" not in out
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    [key] = twilio.state.public_keys.values()
    private = serialization.load_pem_private_key(target.read_bytes(), password=None)
    assert public_pem(private) == key["pem"]
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="exists already"):
        call_command("twilio_recording_key", "create", "--private-key-file", str(target))
    assert len(twilio.state.public_keys) == 1


def test_upload_and_list(twilio, tmp_path, settings, capsys):
    key = key_pair()
    path = tmp_path / "public.pem"
    path.write_text(public_pem(key))
    call_command("twilio_recording_key", "upload", str(path))
    [registered_key] = twilio.state.public_keys.values()
    settings.TWILIO_RECORDING_PRIVATE_KEYS = {registered_key["sid"]: key, "CR" + "2" * 32: key}
    capsys.readouterr()
    call_command("twilio_recording_key", "list")
    out = capsys.readouterr().out
    assert f"{registered_key['sid']}" in out
    assert "private key configured" in out
    assert "CR" + "2" * 32 + "  (configured here, not on the Twilio account)" in out


def test_upload_refuses_what_is_not_an_rsa_key(twilio, tmp_path):
    from django.core.management.base import CommandError

    path = tmp_path / "nonsense.pem"
    path.write_text("not a key")
    with pytest.raises(CommandError, match="not a PEM public or private key"):
        call_command("twilio_recording_key", "upload", str(path))
    assert twilio.state.public_keys == {}


# --- a whole call ----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_whole_call_with_encryption_on_ends_stored_and_deleted_at_twilio(
    driver, twilio, settings, live_db, tasks_in_process
):
    from .factories import PurposeFactory, published_notice
    from .helpers.staff import acknowledged_operator

    published_notice(purposes=[PurposeFactory(code="quality", name_ja="品質向上")])
    acknowledged_operator("op")
    key = key_pair()
    sid = registered(twilio, key)
    settings.TWILIO_RECORDING_PRIVATE_KEYS = {sid: key}

    result = driver.run(digits="1", talk_seconds=SECONDS)

    at_twilio = twilio.state.recordings[result.recording_sid]
    assert at_twilio["encryption_details"]["public_key_sid"] == sid
    assert at_twilio["media"][:4] != b"RIFF"
    recording = Recording.objects.get(sid=result.recording_sid)
    assert recording.status == Status.STORED
    assert decrypted(recording)[:4] == b"RIFF"
    assert at_twilio["deleted"] is True


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_reads_the_private_key_file_and_stores_the_call(
    driver, twilio, broker, live_db, tmp_path
):
    """The worker process reads TWILIO_RECORDING_PRIVATE_KEYS at start, as production does."""
    from .factories import PurposeFactory, published_notice
    from .helpers.services import Worker, wait_for, wait_for_worker_sessions_to_end
    from .helpers.staff import acknowledged_operator

    published_notice(purposes=[PurposeFactory(code="quality", name_ja="品質向上")])
    acknowledged_operator("op")
    key = key_pair()
    sid = registered(twilio, key)
    pem = tmp_path / "twilio-recordings.pem"
    pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    worker = Worker(
        broker=broker,
        twilio=twilio,
        log_path=tmp_path / "worker.log",
        TWILIO_RECORDING_PRIVATE_KEYS=f"{sid}:{pem}",
    ).start()
    try:
        result = driver.run(digits="1", talk_seconds=SECONDS)
        wait_for(
            lambda: Recording.objects.filter(
                sid=result.recording_sid, status=Status.STORED, twilio_deleted_at__isnull=False
            ).exists(),
            what="the encrypted recording to be stored",
            worker=worker,
        )
    finally:
        worker.stop()
        wait_for_worker_sessions_to_end()
    recording = Recording.objects.get(sid=result.recording_sid)
    assert twilio.state.recordings[recording.sid]["encryption_details"]["public_key_sid"] == sid
    assert decrypted(recording)[:4] == b"RIFF"
