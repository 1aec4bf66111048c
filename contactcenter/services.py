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
    allowed_from: frozenset


RecordingState = Call.RecordingState
ACTIONS = {
    "pause": RecordingAction(
        "paused",
        RecordingState.PAUSED,
        CallEvent.Kind.RECORDING_PAUSED,
        frozenset({RecordingState.REQUESTED, RecordingState.RECORDING}),
    ),
    "resume": RecordingAction(
        "in-progress",
        RecordingState.RECORDING,
        CallEvent.Kind.RECORDING_RESUMED,
        frozenset({RecordingState.PAUSED}),
    ),
    "stop": RecordingAction(
        "stopped",
        RecordingState.STOPPED,
        CallEvent.Kind.RECORDING_STOPPED,
        frozenset({RecordingState.REQUESTED, RecordingState.RECORDING, RecordingState.PAUSED}),
    ),
}


class RecordingControlError(Exception):
    """Why a control was refused or failed, for the person who asked; ``status`` is HTTP's."""

    def __init__(self, message, *, status):
        super().__init__(str(message))
        self.message = message
        self.status = status


def can_control_recording(user, call):
    """Only the operator on the call, or someone allowed to control any call (supervisors)."""
    if user.has_perm(CONTROL_ANY_RECORDING):
        return True
    return call.operator_id is not None and call.operator.user_id == user.pk


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
        calls = calls.filter(operator__user=user)
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
    if call.status != Call.Status.IN_PROGRESS:
        raise RecordingControlError(_("The call is no longer in progress."), status=409)
    if call.recording_state not in step.allowed_from:
        raise RecordingControlError(
            _("The recording cannot be changed now: it is %(state)s.")
            % {"state": call.get_recording_state_display()},
            status=409,
        )
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
        Call.objects.filter(pk=call.pk).update(recording_state=step.state)
        CallEvent.objects.create(call=call, kind=step.event, actor=by)
    call.refresh_from_db()
    return call
