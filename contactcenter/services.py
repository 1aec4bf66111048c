"""Live control of a call's recording (R4): pause while a card number is read, resume, stop."""

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

import twilio_client

from .models import Call, CallEvent

CONTROL_ANY_RECORDING = "contactcenter.control_any_recording"


@dataclass(frozen=True)
class RecordingAction:
    twilio_status: str
    state: str
    event: str
    only_from: frozenset | None = None  # narrower than the recording's state machine

    @property
    def allowed_from(self):
        """The recording states this action starts from (``Call.RECORDING_STATE_TRANSITIONS``)."""
        allowed = Call.RECORDING_STATE_TRANSITIONS.predecessors(self.state)
        return allowed if self.only_from is None else allowed & self.only_from


RecordingState = Call.RecordingState
ACTIONS = {
    "pause": RecordingAction("paused", RecordingState.PAUSED, CallEvent.Kind.RECORDING_PAUSED),
    # Twilio's own "in-progress" callback moves a requested recording to recording; a person
    # resumes only what was paused.
    "resume": RecordingAction(
        "in-progress",
        RecordingState.RECORDING,
        CallEvent.Kind.RECORDING_RESUMED,
        only_from=frozenset({RecordingState.PAUSED}),
    ),
    "stop": RecordingAction("stopped", RecordingState.STOPPED, CallEvent.Kind.RECORDING_STOPPED),
}


class RecordingControlError(Exception):
    """Why a control was refused or failed, for the person who asked; ``status`` is HTTP's."""

    def __init__(self, message, *, status):
        super().__init__(str(message))
        self.message = message
        self.status = status


def can_control_recording(user, call):
    """Only the operator on the call, or someone allowed to control any call (supervisors)."""
    return user.has_perm(CONTROL_ANY_RECORDING) or call.is_handled_by(user)


def available_actions(call):
    if call.status != Call.Status.IN_PROGRESS:
        return []
    return [name for name, action in ACTIONS.items() if call.recording_state in action.allowed_from]


def live_calls_for(user):
    """The calls in progress that ``user`` may control, newest first."""
    calls = Call.objects.filter(status=Call.Status.IN_PROGRESS).select_related(
        "customer", "operator"
    )
    if not user.has_perm(CONTROL_ANY_RECORDING):
        calls = calls.handled_by(user)
    return calls.order_by("-started_at")


def control_recording(*, call, action, by, for_card=False):
    """Pause, resume or stop ``call``'s recording at Twilio and keep it on the call's timeline.

    Raises ``RecordingControlError`` (with an HTTP status: 400 unknown action, 403 not allowed,
    409 not possible in the call's state, 502 Twilio failed). A Twilio failure is kept on the
    timeline too. Paused audio is replaced by silence, so the recording keeps its length.
    """
    if action not in ACTIONS:
        raise RecordingControlError(_("Unknown action: choose pause, resume or stop."), status=400)
    if by is not None and not can_control_recording(by, call):
        raise RecordingControlError(
            _("Only the operator on this call or a supervisor can control its recording."),
            status=403,
        )
    step = ACTIONS[action]
    call.refresh_from_db()
    if call.status != Call.Status.IN_PROGRESS or call.recording_state not in step.allowed_from:
        raise _not_possible_now(call)
    try:
        twilio_client.update_recording(call_sid=call.sid, status=step.twilio_status)
    except twilio_client.TwilioError as error:
        CallEvent.objects.create(
            call=call,
            kind=CallEvent.Kind.RECORDING_CONTROL_FAILED,
            actor=by,
            detail=f"{action}: {error.message}",
        )
        if for_card and action == "pause":
            # The recording runs on: if the number is read now, it is on tape.
            mark_card_data(call=call, by=by, note=_("The pause for a card number failed."))
        raise RecordingControlError(error.message, status=502) from error
    with transaction.atomic():
        # Twilio takes a moment: the call may have ended, or its recording turned out absent,
        # meanwhile. Only a call still in progress, in a state this action starts from, moves.
        moved = Call.objects.filter(status=Call.Status.IN_PROGRESS).transition_recording_state(
            call.pk, to=step.state, only_from=step.allowed_from
        )
        if moved:
            card_pause = {}
            if for_card and action == "pause":
                until = timezone.now() + timedelta(seconds=settings.CARD_PAUSE_SECONDS)
                card_pause = {"card_pause_until": until}
            elif action in ("resume", "stop"):
                card_pause = {"card_pause_until": None}
            if card_pause:
                Call.objects.filter(pk=call.pk).update(**card_pause)
            kind = step.event
            if for_card:
                kind = (
                    CallEvent.Kind.CARD_PAUSE
                    if action == "pause"
                    else CallEvent.Kind.CARD_PAUSE_ENDED
                )
            CallEvent.objects.create(
                call=call, kind=kind, actor=by, detail="" if by else _("automatically, on time")
            )
    call.refresh_from_db()
    if not moved:
        refusal = _not_possible_now(call)
        CallEvent.objects.create(
            call=call,
            kind=CallEvent.Kind.RECORDING_CONTROL_FAILED,
            actor=by,
            detail=f"{action}: {refusal.message}",
        )
        raise refusal
    return call


def _not_possible_now(call):
    if call.status != Call.Status.IN_PROGRESS:
        return RecordingControlError(_("The call is no longer in progress."), status=409)
    return RecordingControlError(
        _("The recording cannot be changed now: it is %(state)s.")
        % {"state": call.get_recording_state_display()},
        status=409,
    )


# --- card numbers (PCI DSS scope: no card number on a recording) ------------------------------


def pause_for_card(*, call, by):
    """Pause ``call``'s recording while the caller reads a card number; it resumes by itself
    after ``CARD_PAUSE_SECONDS`` (``resume_expired_card_pauses``, and the operator's page at
    zero) or at the operator's word (``end_card_pause``). A pause that fails leaves the call
    marked as possibly holding card data, and the error is raised as for any control."""
    return control_recording(call=call, action="pause", by=by, for_card=True)


def end_card_pause(*, call, by):
    """Resume a recording paused for a card number (the operator's 「再開」)."""
    return control_recording(call=call, action="resume", by=by, for_card=True)


def resume_expired_card_pauses(*, now=None):
    """Resume every recording whose pause for a card number has run out; return how many.
    Run by beat every 15 seconds; a call that ended or was resumed meanwhile is left alone."""
    due = Call.objects.filter(
        status=Call.Status.IN_PROGRESS,
        recording_state=RecordingState.PAUSED,
        card_pause_until__lte=now or timezone.now(),
    )
    resumed = 0
    for call in due[:200]:
        try:
            control_recording(call=call, action="resume", by=None, for_card=True)
        except RecordingControlError:
            continue  # on the timeline already; the next run tries again while it is due
        resumed += 1
    return resumed


def mark_card_data(*, call, by, note):
    """Mark ``call``'s recording as possibly holding card data (a pause missed or failed):
    the recording is kept only as long as its shortest purpose allows, and a leak of it is
    a leak of data that can cause financial loss (APPI rule 7 (2)). Idempotent: the first
    mark's time is kept. Only the operator on the call or a supervisor may mark it."""
    if by is not None and not can_control_recording(by, call):
        raise RecordingControlError(
            _("Only the operator on this call or a supervisor can mark it."), status=403
        )
    with transaction.atomic():
        Call.objects.filter(pk=call.pk, card_data_suspected_at__isnull=True).update(
            card_data_suspected_at=timezone.now()
        )
        Call.objects.filter(pk=call.pk).update(card_data_note=str(note)[:2000])
        CallEvent.objects.create(
            call=call, kind=CallEvent.Kind.CARD_DATA_MARKED, actor=by, detail=str(note)[:2000]
        )
    call.refresh_from_db()
    return call
