"""Recordings as Twilio makes them and as we store them: a finished recording at the local
Twilio emulator, its status callback, and what ends up in the recordings directory."""

from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.files.storage import storages
from django.utils import timezone

from recordings import crypto, ingest
from recordings.models import OutboxMessage, Recording

from .webhooks import twilio_post

CALLBACK = "/twilio/recordings/status"


def at_twilio(twilio, call, *, seconds=2, **faults):
    """Twilio recorded ``call`` and holds the audio (with ``faults`` when it is served)."""
    state = twilio.state
    if call.sid not in state.calls:
        state.control("POST", "/_emulator/calls", {"sid": call.sid})
    _, resource = state.control("POST", f"/_emulator/calls/{call.sid}/recordings", {})
    _, resource = state.control(
        "POST", f"/_emulator/recordings/{resource['sid']}/complete", {"seconds": seconds, **faults}
    )
    return resource


def callback(client, call, resource, status="completed", **extra):
    """Twilio's signed recording status callback about ``resource``."""
    params = {
        "AccountSid": resource["account_sid"],
        "CallSid": call.sid,
        "RecordingSid": resource["sid"],
        "RecordingUrl": resource["media_url"],
        "RecordingStatus": status,
        "RecordingChannels": "2",
        "RecordingSource": "DialVerb",
        "RecordingStartTime": resource["start_time"],
        "RecordingTrack": "both",
        **extra,
    }
    if status == "completed":
        params.setdefault("RecordingDuration", resource["duration"])
    return twilio_post(client, CALLBACK, params)


def completed(client, twilio, call, **faults):
    """A recording Twilio finished and told us about; its fetch is waiting in the outbox."""
    resource = at_twilio(twilio, call, **faults)
    assert callback(client, call, resource).status_code == 200
    return Recording.objects.get(sid=resource["sid"])


def media(twilio, recording):
    return twilio.state.recordings[recording.sid]["media"]


def twilio_copy(twilio, recording):
    return twilio.state.recordings[recording.sid]


def stored_files():
    """Every file in this test's recordings directory."""
    root = Path(settings.STORAGES["recordings"]["OPTIONS"]["location"])
    return sorted(p for p in root.rglob("*") if p.is_file())


def decrypted(recording):
    key = crypto.unwrap_key(recording.key_id, bytes(recording.wrapped_key))
    with storages["recordings"].open(recording.blob_name, "rb") as blob:
        return b"".join(crypto.decrypt_all(blob, key))


def fetch_messages():
    return OutboxMessage.objects.filter(task=ingest.FETCH_TASK)


def past_retention(recording):
    Recording.objects.filter(pk=recording.pk).update(
        retain_until=timezone.now() - timedelta(days=1)
    )


def waiting(twilio, call, **faults):
    """A recording Twilio finished, waiting to be fetched (its callback's fetch not run)."""
    resource = at_twilio(twilio, call, **faults)
    return Recording.objects.create(
        sid=resource["sid"], call=call, status=Recording.Status.COMPLETED, channels=2
    )


def media_requests(twilio, recording):
    return twilio_copy(twilio, recording).get("media_requests", 0)
