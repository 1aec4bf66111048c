"""Live control of a call's recording (R4): pause while a card number is read, resume, stop."""

from dataclasses import dataclass

from django.db import transaction
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


def control_recording(*, call, action, by):
    """Pause, resume or stop ``call``'s recording at Twilio and keep it on the call's timeline.

    Raises ``RecordingControlError`` (with an HTTP status: 400 unknown action, 403 not allowed,
    409 not possible in the call's state, 502 Twilio failed). A Twilio failure is kept on the
    timeline too. Paused audio is replaced by silence, so the recording keeps its length.
    """
    if action not in ACTIONS:
        raise RecordingControlError(_("Unknown action: choose pause, resume or stop."), status=400)
    if not can_control_recording(by, call):
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
        raise RecordingControlError(error.message, status=502) from error
    with transaction.atomic():
        # Twilio takes a moment: the call may have ended, or its recording turned out absent,
        # meanwhile. Only a call still in progress, in a state this action starts from, moves.
        moved = Call.objects.filter(status=Call.Status.IN_PROGRESS).transition_recording_state(
            call.pk, to=step.state, only_from=step.allowed_from
        )
        if moved:
            CallEvent.objects.create(call=call, kind=step.event, actor=by)
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
