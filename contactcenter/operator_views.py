"""The operators' live-call page (通話中): pause, resume or stop the recording of a call."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from .models import Call
from .services import RecordingControlError, available_actions, control_recording, live_calls_for

LOGIN = "admin:login"


@login_required(login_url=LOGIN)
def live_calls(request):
    calls = [(call, available_actions(call)) for call in live_calls_for(request.user)[:100]]
    return render(request, "contactcenter/live_calls.html", {"calls": calls})


@login_required(login_url=LOGIN)
@require_POST
def control(request, sid):
    call = get_object_or_404(Call.objects.select_related("operator"), sid=sid)
    try:
        control_recording(call=call, action=request.POST.get("action", ""), by=request.user)
    except RecordingControlError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, call.get_recording_state_display())
    return redirect("contactcenter:live-calls")
