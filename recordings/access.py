"""Who may listen to which recording, and for which purpose (purpose-bound access).

Every use of a recording's audio names a purpose. It is allowed only while that purpose's
window is open on the recording (the days its notice announced, counted from the call), and
only to people whose role allows that use:

* supervisors (``recordings.play_recording``): any stored recording, for any open purpose;
* operators (``recordings.review_for_training``): a purpose that allows training review,
  on their own calls and on recordings a supervisor marked as training material;
* a caller, through a request the staff granted (a listening link, or a call that plays it):
  their own call's recording, while the grant lasts (``start_disclosure``).

Everything else is refused with a reason a person can act on; callers of ``check_access``
write the answer to the audit trail whichever it is.
"""

from dataclasses import dataclass, field

from django.db.models import Q
from django.utils import formats, timezone
from django.utils.translation import gettext_lazy as _

from audit import services as audit
from audit.models import AccessEvent
from contactcenter.models import Call

from .models import Recording, RecordingPurpose

Action = AccessEvent.Action
PLAY = "recordings.play_recording"
REVIEW = "recordings.review_for_training"
# Handing recordings to someone outside the company (the provision ledger, evidence packages).
PROVIDE = "recordings.provide_to_third_party"
DISCLOSURE = "disclosure"  # the purpose of a caller hearing their own recording (APPI Art. 33)


@dataclass(frozen=True)
class Access:
    allowed: bool
    reason: str
    window: RecordingPurpose | None = None
    details: dict = field(default_factory=dict)

    REASONS = {
        "allowed": _("Allowed."),
        "not_stored": _("This recording cannot be played: it has been purged or was never stored."),
        "sealed": _("The use of this recording was stopped at the customer's request."),
        "no_permission": _("Your role does not allow listening to recordings."),
        "no_purpose": _("Choose the purpose for which you are listening."),
        "not_announced": _(
            "This recording may not be used for that purpose: it was not among the purposes "
            "announced to the caller."
        ),
        "window_closed": _(
            "The period during which this recording may be used for that purpose ended on "
            "%(until)s."
        ),
        "not_training": _(
            "Operators may only review recordings for training, and only while the training "
            "period is open."
        ),
        "not_yours": _(
            "Operators may review only their own calls and recordings a supervisor has marked "
            "as training material."
        ),
        "download_not_allowed": _("Your role allows listening for training, not downloading."),
        "grant_expired": _(
            "This link has expired. Make a new request to hear the recording again."
        ),
        "not_theirs": _(
            "This recording is not of a call from the number the request was made for."
        ),
        "already_played": _(
            "This playback by phone has already been heard. Ask for another call from the "
            "listening page."
        ),
    }

    def __bool__(self):
        return self.allowed

    @property
    def message(self):
        text = self.REASONS[self.reason]
        return text % self.details if self.details else text


def _refuse(reason, **details):
    return Access(allowed=False, reason=reason, details=details)


def open_windows(recording, *, at=None):
    """The recording's purposes whose window is open at ``at`` (default now)."""
    if recording.status != Recording.Status.STORED or recording.sealed_at is not None:
        return RecordingPurpose.objects.none()
    return (
        RecordingPurpose.objects.filter(recording=recording, usable_until__gt=at or timezone.now())
        .select_related("purpose")
        .order_by("purpose__code")
    )


def windows_for(user, recording, *, at=None):
    """The open purposes ``user`` may choose from to play ``recording``."""
    windows = open_windows(recording, at=at)
    if user.has_perm(PLAY):
        return list(windows)
    if user.has_perm(REVIEW) and _operator_may_see(user, recording):
        return [window for window in windows if window.allows_training_review]
    return []


def may_download(user):
    """Whether ``user``'s role allows downloading audio (for an open purpose) at all."""
    return user.has_perm(PLAY)


def purpose_window(recording, purpose_code, *, at=None):
    """May ``recording`` be used for ``purpose_code`` at ``at``, whoever asks? Only a stored
    recording whose use was not stopped, for a purpose announced for it, while that
    purpose's window is open. An allowed answer carries the window."""
    if recording.status != Recording.Status.STORED:
        return _refuse("not_stored")
    if recording.sealed_at is not None:
        return _refuse("sealed")
    if not purpose_code:
        return _refuse("no_purpose")
    window = (
        RecordingPurpose.objects.filter(recording=recording, purpose__code=purpose_code)
        .select_related("purpose")
        .first()
    )
    if window is None:
        return _refuse("not_announced")
    if window.usable_until <= (at or timezone.now()):
        until = formats.date_format(timezone.localtime(window.usable_until), "DATE_FORMAT")
        return _refuse("window_closed", until=until)
    return Access(allowed=True, reason="allowed", window=window)


def check_access(user, recording, purpose_code, *, download=False, at=None):
    """May ``user`` listen to (or ``download``) ``recording`` for ``purpose_code`` now?"""
    at = at or timezone.now()
    if not (user.is_authenticated and (user.has_perm(PLAY) or user.has_perm(REVIEW))):
        return _refuse("no_permission")
    access = purpose_window(recording, purpose_code, at=at)
    if not access:
        return access
    window = access.window
    if user.has_perm(PLAY):
        return Access(allowed=True, reason="allowed", window=window)
    if download:
        return _refuse("download_not_allowed")
    if not window.allows_training_review:
        return _refuse("not_training")
    if not _operator_may_see(user, recording):
        return _refuse("not_yours")
    return Access(allowed=True, reason="allowed", window=window)


def start_session(user, recording, purpose_code, *, channel, download=False, request=None):
    """Check an access and write it to the audit trail, allowed or refused.

    Returns ``(access, event)``: the answer, and the PLAYBACK or DOWNLOAD event that opens
    the session (None when refused; the refusal is recorded instead).
    """
    access = check_access(user, recording, purpose_code, download=download)
    if not access:
        refused(recording, purpose_code, access, request=request, channel=channel)
        return access, None
    event = audit.record(
        Action.DOWNLOAD if download else Action.PLAYBACK,
        recording=recording,
        purpose=purpose_code,
        detail={"channel": channel},
        request=request,
    )
    return access, event


def refused(recording, purpose_code, access, *, request=None, **detail):
    """Write a refused access to the audit trail."""
    audit.record(
        Action.REFUSED,
        recording=recording,
        purpose=purpose_code,
        detail={"reason": access.reason, **detail},
        request=request,
    )


def customer_label(phone_number):
    """How the audit trail names a caller, who has no account: by the number they proved."""
    return f"customer {phone_number}"


def check_disclosure(recording, *, phone_number, until, at=None):
    """May the holder of ``phone_number`` hear ``recording`` now, under a grant that lasts
    ``until``? Only a stored recording of a call from that number, while the grant lasts.

    A sealed recording (use stopped at the customer's request) is still heard here: hearing
    one's own recording is disclosure to the person (art. 33), not a use of it."""
    if recording.status != Recording.Status.STORED:
        return _refuse("not_stored")
    if until <= (at or timezone.now()):
        return _refuse("grant_expired")
    customer = recording.call.customer
    if customer is None or customer.phone_number != phone_number:
        return _refuse("not_theirs")
    return Access(allowed=True, reason="allowed")


def start_disclosure(recording, *, phone_number, until, detail, request=None):
    """Check a caller's granted hearing of their recording and write it to the audit trail:
    a PLAYBACK for the disclosure purpose, or the refusal. Returns the answer."""
    access = check_disclosure(recording, phone_number=phone_number, until=until)
    if not access:
        _disclosure_refused(recording, access, phone_number, detail, request)
        return access
    audit.record(
        Action.PLAYBACK,
        actor_label=customer_label(phone_number),
        recording=recording,
        purpose=DISCLOSURE,
        detail=detail,
        request=request,
    )
    return access


def continue_disclosure(recording, *, phone_number, until, detail, request=None):
    """Check again each request for the audio of a disclosure ``start_disclosure`` opened
    (Range requests are part of that playback); only a refusal is written to the trail."""
    access = check_disclosure(recording, phone_number=phone_number, until=until)
    if not access:
        _disclosure_refused(recording, access, phone_number, detail, request)
    return access


def refuse_disclosure(recording, reason, *, phone_number, detail, request=None):
    """Refuse a caller's hearing for a ``reason`` the caller's service decided (a phone
    play's audio asked for again after its playback) and write it to the trail."""
    access = _refuse(reason)
    _disclosure_refused(recording, access, phone_number, detail, request)
    return access


def _disclosure_refused(recording, access, phone_number, detail, request):
    audit.record(
        Action.REFUSED,
        actor_label=customer_label(phone_number),
        recording=recording,
        purpose=DISCLOSURE,
        detail={"reason": access.reason, **detail},
        request=request,
    )


def _operator_may_see(user, recording):
    return recording.training_material_at is not None or recording.call.is_handled_by(user)


def training_recordings(user, *, at=None):
    """Recordings ``user`` may review for training now: stored, with an open training window,
    and their own call or marked as training material (supervisors: every such recording)."""
    at = at or timezone.now()
    recordings = Recording.objects.filter(
        status=Recording.Status.STORED,
        sealed_at__isnull=True,
        purposes__allows_training_review=True,
        purposes__usable_until__gt=at,
    )
    if not user.has_perm(PLAY):
        if not user.has_perm(REVIEW):
            return Recording.objects.none()
        recordings = recordings.filter(
            Q(training_material_at__isnull=False) | Q(call__in=Call.objects.handled_by(user))
        )
    return recordings.distinct()
