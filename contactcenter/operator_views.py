"""The operators' live-call page (通話中): pause, resume or stop the recording of a call."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from . import payments
from .models import Call, CallPayment
from .services import (
    RecordingControlError,
    available_actions,
    control_recording,
    end_card_pause,
    live_calls_for,
    mark_card_data,
    pause_for_card,
)

LOGIN = "admin:login"


@login_required(login_url=LOGIN)
def live_calls(request):
    live = list(live_calls_for(request.user)[:100])
    # The latest payment of each call, in one query.
    latest = {
        payment.call_id: payment
        for payment in CallPayment.objects.filter(call__in=live).order_by("started_at", "pk")
    }
    calls = [(call, available_actions(call), latest.get(call.pk)) for call in live]
    return render(
        request,
        "contactcenter/live_calls.html",
        {
            "calls": calls,
            "card_pause_seconds": settings.CARD_PAUSE_SECONDS,
            "payments_enabled": payments.enabled(),
            "payment_parts": [
                ("card_number", _("Ask for the card number")),
                ("expiration_date", _("Ask for the expiry date")),
                ("security_code", _("Ask for the security code")),
            ],
        },
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


@login_required(login_url=LOGIN)
@require_POST
def payment(request, sid):
    """The card payment of a live call: open it, ask for each part of the card, finish it."""
    call = get_object_or_404(Call.objects.select_related("operator"), sid=sid)
    step = request.POST.get("step", "")
    try:
        if step in ("start", "ivr"):
            try:
                amount = int(request.POST.get("amount", "").replace(",", "").strip())
            except ValueError:
                amount = None
            if step == "ivr":
                payments.start_by_ivr(call=call, by=request.user, amount=amount)
                messages.success(
                    request,
                    _(
                        "The caller is in the automated card payment; they will be put "
                        "through to an operator again when it is done."
                    ),
                )
            else:
                payments.start(call=call, by=request.user, amount=amount)
                messages.success(
                    request,
                    _(
                        "Payment opened; the recording is paused. Ask the caller for the "
                        "card number."
                    ),
                )
        else:
            open_payment = payments.open_payment(call)
            if open_payment is None:
                raise payments.PaymentError(_("No payment is open on this call."), status=409)
            if step in payments.PARTS:
                payments.ask_for(payment=open_payment, by=request.user, part=step)
                messages.success(request, _("The caller is asked to key it on the keypad."))
            elif step in ("complete", "cancel"):
                done = payments.finish(
                    payment=open_payment, by=request.user, cancel=step == "cancel"
                )
                messages.success(
                    request,
                    _("Payment %(status)s; the recording is resumed.")
                    % {"status": done.get_status_display()},
                )
            else:
                raise payments.PaymentError(_("Unknown payment step."), status=400)
    except payments.PaymentError as error:
        if error.status == 403:
            raise PermissionDenied from error
        messages.error(request, error.message)
    return redirect("contactcenter:live-calls")
