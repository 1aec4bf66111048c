"""Listening to recordings: a playback session is opened for a purpose, then its audio is
streamed (HTTP Range) for as long as that purpose stays open. Both steps are audited."""

import logging

from django.core import signing
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from audit import services as audit
from audit.models import AccessEvent

from . import crypto
from .access import check_access, refused, start_session
from .models import Recording
from .playback import CHANNELS, AudioSource, ChannelNotAvailable, RangeNotSatisfiable, parse_range

logger = logging.getLogger(__name__)

TOKEN_SALT = "recordings.playback"  # noqa: S105 (a signing namespace, not a secret)
# A playback link works this long (a long recording, paused and resumed); every request is
# checked again against the recording's purposes, so a window that closes stops it at once.
TOKEN_MAX_AGE = 4 * 60 * 60


@require_POST
@never_cache
def start_playback(request, pk):
    """Open a playback (or download) session for a purpose; answer the audio's URL."""
    if not request.user.is_authenticated:
        return JsonResponse({"error": _("Log in to listen to recordings.")}, status=403)
    recording = get_object_or_404(Recording.objects.select_related("call__operator"), pk=pk)
    purpose = request.POST.get("purpose", "")
    channel = request.POST.get("channel", "both")
    download = request.POST.get("download") == "1"
    if channel not in CHANNELS:
        _refuse_malformed(request, recording, purpose, "bad_channel", channel=channel[:20])
        return JsonResponse(
            {"error": _("Choose both sides, the customer's side or the operator's side.")},
            status=400,
        )
    if len(purpose) > PURPOSE_MAX_LENGTH:
        _refuse_malformed(request, recording, purpose, "purpose_too_long", length=len(purpose))
        return JsonResponse(
            {"error": _("Choose the purpose of use from the list.")},
            status=400,
        )
    access, event = start_session(
        request.user, recording, purpose, channel=channel, download=download, request=request
    )
    if not access:
        return JsonResponse({"error": str(access.message), "reason": access.reason}, status=403)
    token = signing.dumps(
        {
            "r": recording.pk,
            "u": request.user.pk,
            "p": purpose,
            "c": channel,
            "d": download,
            "e": event.pk,
            "s": _session_binding(request),
        },
        salt=TOKEN_SALT,
    )
    return JsonResponse(
        {
            "url": reverse("recordings:audio", args=[token]),
            "purpose": str(access.window.purpose),
            "event": event.seq,
        }
    )


# The audit trail's purpose column; a longer code is no purpose of ours, only a forged form.
PURPOSE_MAX_LENGTH = AccessEvent._meta.get_field("purpose").max_length


def _refuse_malformed(request, recording, purpose, reason, **detail):
    """Audit a playback request refused before any access check: its form was not ours."""
    audit.record(
        AccessEvent.Action.REFUSED,
        recording=recording,
        purpose=purpose[:PURPOSE_MAX_LENGTH],
        detail={"reason": reason, **detail},
        request=request,
    )


def _session_binding(request):
    """A playback link works only in the login session that opened it: logging out (or the
    idle timeout) ends the session, and with it every link. The link carries a keyed hash of
    the session key, never the key itself."""
    return salted_hmac(TOKEN_SALT, request.session.session_key or "").hexdigest()[:32]


def _plain(message, status, **headers):
    response = HttpResponse(str(message), status=status, content_type="text/plain; charset=utf-8")
    for name, value in headers.items():
        response[name] = value
    return response


@require_http_methods(["GET", "HEAD"])
@never_cache
def audio(request, token):
    """Stream a playback session's audio, whole or the byte range asked for."""
    if not request.user.is_authenticated:
        return _plain(_("Log in to listen to recordings."), 403)
    try:
        grant = signing.loads(token, salt=TOKEN_SALT, max_age=TOKEN_MAX_AGE)
    except signing.BadSignature:
        return _plain(
            _("This playback link has expired or is not valid. Choose the purpose and play again."),
            403,
        )
    if grant["u"] != request.user.pk:
        return _plain(_("This playback link was opened by someone else."), 403)
    if grant.get("s") != _session_binding(request):
        # A new login (after logging out or an idle timeout) starts a new session.
        return _plain(
            _("This playback link ended when you logged out. Choose the purpose and play again."),
            403,
        )
    recording = get_object_or_404(Recording.objects.select_related("call__operator"), pk=grant["r"])
    access = check_access(request.user, recording, grant["p"], download=grant["d"])
    if not access:
        refused(recording, grant["p"], access, request=request, session=grant["e"])
        return _plain(access.message, 403)
    return stream_recording(request, recording, channel=grant["c"], download=grant["d"])


def stream_recording(request, recording, *, channel, download):
    """Answer ``request`` with the decrypted audio of ``recording`` (whole, or the byte range
    its Range header asks for). The caller has checked that it may be heard."""
    try:
        source = AudioSource(recording, channel)
    except ChannelNotAvailable:
        return _plain(_("Only a two-channel recording can be played one side at a time."), 400)
    except (crypto.RecordingIntegrityError, crypto.UnknownMasterKey, OSError) as error:
        logger.error("Recording %s cannot be read: %s", recording.sid, error)
        return _plain(
            _("The stored recording cannot be read (%(error)s). Tell an administrator.")
            % {"error": error},
            409,
        )
    try:
        wanted = parse_range(request.headers.get("Range"), source.size)
    except RangeNotSatisfiable:
        source.close()
        return _plain(
            _("The requested range is outside the audio (%(size)d bytes).") % {"size": source.size},
            416,
            **{"Content-Range": f"bytes */{source.size}"},
        )
    start, end = wanted or (0, source.size)
    body = [] if request.method == "HEAD" else _stream(source, start, end)
    if request.method == "HEAD":
        source.close()
    response = StreamingHttpResponse(body, status=206 if wanted else 200)
    response["Content-Type"] = source.content_type
    response["Content-Length"] = str(end - start)
    response["Accept-Ranges"] = "bytes"
    if wanted:
        response["Content-Range"] = f"bytes {start}-{end - 1}/{source.size}"
    disposition = "attachment" if download else "inline"
    response["Content-Disposition"] = f'{disposition}; filename="{recording.sid}-{channel}.wav"'
    response["X-Content-Type-Options"] = "nosniff"
    return response


STREAM_CHUNK = 1024 * 1024


def _stream(source, start, end):
    """The bytes ``[start, end)``, in pieces of about 1 MiB (fewer, larger socket writes)."""
    try:
        pieces, size = [], 0
        for piece in source.read(start, end):
            pieces.append(piece)
            size += len(piece)
            if size >= STREAM_CHUNK:
                yield b"".join(pieces)
                pieces, size = [], 0
        if pieces:
            yield b"".join(pieces)
    except crypto.RecordingIntegrityError as error:
        # Headers are sent: the client sees a short body, and the log says why.
        logger.error("Recording %s is damaged: %s", source.recording.sid, error)
    finally:
        source.close()
