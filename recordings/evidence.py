"""The evidence package of a recording, for a dispute: a ZIP a court or the other side can
check without trusting us.

It holds the audio (the WAV Twilio made, both channels, and each side as its own WAV), the
call's metadata and timeline (``call.json``), its consent records with the exact
announcement text and its SHA-256 (``consent.json``), the notice in force at the call (its
public page as HTML, and as JSON), the audit events of this recording (``audit.json``), and
``manifest.json``: every member's name, SHA-256 and size. ``manifest.sig`` is the Ed25519
signature (64 raw bytes) of the exact bytes of ``manifest.json``.

The organisation signs its evidence with the same Ed25519 key it signs its audit
checkpoints with (``AUDIT_ANCHOR_KEY``, ``audit.anchors``): the public key third parties
keep is the one ``manage.py verify_audit --public-key`` prints. ``python -m
evidence_verify package.zip --public-key KEY`` checks a package with it.

The ZIP is made while it is sent: each member is hashed as it is written, so the manifest
comes last, and the audio is decrypted a segment at a time, never held whole in the clear.
"""

import hashlib
import json
from datetime import date, datetime
from decimal import Decimal
from uuid import UUID

from django.conf import settings
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from audit import anchors
from audit import services as audit
from audit.models import AccessEvent
from consent.models import ConsentRecord
from contactcenter.roles import NotAllowed, require
from privacy import views as privacy_views
from privacy.services import notice_in_force

from .access import PROVIDE, purpose_window, refused
from .models import RecordingPurpose
from .playback import (
    BOTH,
    CUSTOMER,
    OPERATOR,
    AudioSource,
    ChannelNotAvailable,
    ZipStream,
    zip_date_time,
)

PURPOSE = "evidence"  # the purpose announced for confirming what was said and disputes
CHANNEL = "evidence_package"
FORMAT = "evidence-package/1"
MANIFEST, SIGNATURE = "manifest.json", "manifest.sig"
Action = AccessEvent.Action


def may_package(user):
    """Whether ``user``'s role may make evidence packages: the roles that may hand recordings
    to a third party (supervisors and compliance officers)."""
    return user is not None and user.is_authenticated and user.has_perm(PROVIDE)


def check(recording, *, at=None):
    """Whether ``recording`` may go into an evidence package now: stored, its use not
    stopped, and the evidence purpose announced for it and still open."""
    return purpose_window(recording, PURPOSE, at=at)


def package(recording, *, by, http_request=None):
    """Authorise and audit the download of ``recording``'s evidence package by ``by``; return
    the streamed ZIP (an iterator of bytes).

    Refused with ``NotAllowed`` (nothing else written) for a role without
    ``recordings.provide_to_third_party``; refused with ``NotAllowed`` and a REFUSED audit
    event for a recording that is not stored, is sealed, or whose evidence purpose was not
    announced or has closed. Otherwise a DOWNLOAD event (purpose ``evidence``, channel
    ``evidence_package``) is written before the first byte is sent.
    """
    require(by, PROVIDE, _("Your role does not allow making evidence packages."))
    access = check(recording)
    if not access:
        refused(recording, PURPOSE, access, request=http_request, channel=CHANNEL)
        raise NotAllowed(access.message)
    audit.record(
        Action.DOWNLOAD,
        actor=by,
        recording=recording,
        purpose=PURPOSE,
        detail={"channel": CHANNEL},
        request=http_request,
    )
    return stream(recording, by=by)


def stream(recording, *, by, provision=None):
    """The package of ``recording`` as a ZIP made while it is sent, once its download was
    authorised and audited (``package``, or the export of a ``provision`` record that lists
    the evidence package: then the record goes in too, as ``provision.json``)."""
    documents = _documents(recording)
    if provision is not None:
        documents.append(("provision.json", _json({"provision_record": _fields(provision)})))
    return _stream(recording, documents, by=by, provision=provision)


def filename(recording):
    return f"evidence-{recording.sid}.zip"


# --- the members ------------------------------------------------------------------------------


def _json(data):
    return (json.dumps(data, ensure_ascii=False, indent=2, default=_plain) + "\n").encode()


def _plain(value):
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal | UUID):
        return str(value)
    if isinstance(value, bytes | memoryview):
        return None  # key material never leaves the database
    raise TypeError(type(value).__name__)


def _fields(instance, exclude=()):
    return {
        field.attname: getattr(instance, field.attname)
        for field in instance._meta.concrete_fields
        if field.attname not in exclude
    }


def _documents(recording):
    """``(name, bytes)`` of the members that are not audio."""
    call = recording.call
    notice = recording_notice(recording)
    documents = [
        (
            "call.json",
            _json(
                {
                    "recording": _fields(recording, exclude={"wrapped_key"}),
                    "call": _fields(call),
                    "timeline": [_fields(row) for row in call.events.order_by("at", "pk")],
                }
            ),
        ),
        ("consent.json", _json({"consent_records": _consents(call)})),
    ]
    if notice is not None:
        documents += [
            (f"notice/notice-v{notice.version}.html", _notice_html(notice)),
            (f"notice/notice-v{notice.version}.json", _notice_json(notice)),
        ]
    events = AccessEvent.objects.filter(recording_id=recording.pk).order_by("seq")
    documents.append(
        (
            "audit.json",
            _json(
                {
                    "note": "Events of the hash-chained access audit trail about this recording; "
                    "this package's own download is the last.",
                    "events": [_fields(row) for row in events],
                }
            ),
        )
    )
    return documents


def _consents(call):
    rows = []
    for record in ConsentRecord.objects.filter(call=call).order_by("pk"):
        row = _fields(record)
        text = record.announcement_text
        row["announcement_text_sha256_computed"] = hashlib.sha256(text.encode()).hexdigest()
        rows.append(row)
    return rows


def recording_notice(recording):
    """The notice in force when the call was made (the one its purposes were announced in)."""
    window = RecordingPurpose.objects.filter(recording=recording).select_related("notice")
    first = window.first()
    if first is not None:
        return first.notice
    return notice_in_force(recording.call.started_at or recording.created_at)


def _public_request():
    request = HttpRequest()
    request.method = "GET"
    request.META["SERVER_NAME"] = "localhost"
    request.META["SERVER_PORT"] = "80"
    return request


def _notice_html(notice):
    """The notice's public page (/privacy/notices/<n>/) as it is served, in Japanese."""
    with translation.override(settings.LANGUAGE_CODE):
        context = privacy_views.notice_context(notice)
        return render_to_string("privacy/notice_detail.html", context).encode()


def _notice_json(notice):
    """The notice as data (/privacy/notices/<n>.json), both languages."""
    with translation.override(settings.LANGUAGE_CODE):
        response = privacy_views.notice_json(_public_request(), notice.version)
    return response.content + (b"" if response.content.endswith(b"\n") else b"\n")


# --- the stream -------------------------------------------------------------------------------


def _audio_views(recording):
    """``(member name, channel)`` of the audio: both sides, then each (two-channel only)."""
    views = [(f"audio/{recording.sid}.wav", BOTH)]
    if recording.channels == 2:
        views += [
            (f"audio/{recording.sid}-customer.wav", CUSTOMER),
            (f"audio/{recording.sid}-operator.wav", OPERATOR),
        ]
    return views


def _stream(recording, documents, *, by, provision):
    archive = ZipStream(date_time=zip_date_time(recording))
    for name, channel in _audio_views(recording):
        try:
            source = AudioSource(recording, channel)
        except ChannelNotAvailable:
            continue
        yield from archive.add_audio(name, source)
    for name, content in documents:
        yield from archive.add_bytes(name, content)
    manifest = _manifest(recording, list(archive.members), by=by, provision=provision)
    yield from archive.add_bytes(MANIFEST, manifest)
    yield from archive.add_bytes(SIGNATURE, anchors.private_key().sign(manifest))
    yield from archive.close()


def _manifest(recording, entries, *, by, provision):
    return _json(
        {
            "format": FORMAT,
            "recording_sid": recording.sid,
            "call_sid": recording.call.sid,
            "made_at": timezone.now().isoformat(timespec="seconds"),
            "made_by": by.get_username(),
            "signature": {
                "algorithm": "Ed25519",
                "file": SIGNATURE,
                "public_key": anchors.public_key_text(),
                "note": "The signature is over the exact bytes of manifest.json. The public "
                "key is the organisation's audit checkpoint key "
                "(manage.py verify_audit --public-key).",
            },
            "provision_record": None
            if provision is None
            else {
                "id": provision.pk,
                "recipient": provision.recipient_name,
                "basis": provision.basis,
            },
            "members": entries,
        }
    )
