"""The operators' live-call page (通話中): pause, resume or stop the recording of a call."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from .models import Call
from .services import (
    RecordingControlError,
    available_actions,
    can_control_recording,
    control_recording,
    end_card_pause,
    live_calls_for,
    mark_card_data,
    pause_for_card,
)

LOGIN = "admin:login"


@login_required(login_url=LOGIN)
def live_calls(request):
    calls = [(call, available_actions(call)) for call in live_calls_for(request.user)[:100]]
    return render(
        request,
        "contactcenter/live_calls.html",
        {"calls": calls, "card_pause_seconds": settings.CARD_PAUSE_SECONDS},
    )


@login_required(login_url=LOGIN)
@require_POST
def control(request, sid):
    call = get_object_or_404(Call.objects.select_related("operator"), sid=sid)
    action = request.POST.get("action", "")
    try:
        if action == "card":
            call = pause_for_card(call=call, by=request.user)
            messages.success(
                request,
                _("Recording paused for the card number. It resumes by itself in %(seconds)d s.")
                % {"seconds": settings.CARD_PAUSE_SECONDS},
            )
        elif action == "card_end":
            call = end_card_pause(call=call, by=request.user)
            messages.success(request, call.get_recording_state_display())
        elif action == "card_data":
            if not can_control_recording(request.user, call):
                raise PermissionDenied
            mark_card_data(
                call=call, by=request.user, note=_("Marked by the operator during the call.")
            )
            messages.success(
                request,
                _(
                    "Marked: this call's recording may contain card data. It is kept only as "
                    "long as its shortest purpose allows."
                ),
            )
        else:
            call = control_recording(call=call, action=action, by=request.user)
            messages.success(request, call.get_recording_state_display())
    except RecordingControlError as error:
        messages.error(request, error.message)
    return redirect("contactcenter:live-calls")
