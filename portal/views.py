"""The customer portal (/requests/): prove the number, then see your calls and ask."""

import ipaddress
from datetime import timedelta

from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from contactcenter.models import Call
from contactcenter.phones import format_phone_number
from privacy.models import Notice

from . import services
from .forms import CodeForm, NumberForm

PENDING = "portal_pending_number"
PROVEN = "portal_proven"
PROOF_LIFETIME = timedelta(minutes=30)


def _client_ip(request):
    address = request.META.get("REMOTE_ADDR", "")
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None


def proven_number(request):
    """The number this browser proved in the last 30 minutes, or None."""
    proof = request.session.get(PROVEN) or {}
    at = parse_datetime(proof.get("at", "")) if proof else None
    if not at or timezone.now() - at > PROOF_LIFETIME:
        return None
    return proof.get("number")


@never_cache
@require_http_methods(["GET", "POST"])
def start(request):
    """How to make a request, and the first step: the number, and how to get the code."""
    form = NumberForm(request.POST or None)
    error, status = None, 200
    if request.method == "POST" and not form.is_valid():
        status = 400
    elif request.method == "POST":
        number = form.cleaned_data["phone_number"]
        try:
            services.send_code(
                phone_number=number,
                channel=form.cleaned_data["channel"],
                ip=_client_ip(request),
            )
        except services.ProofError as failure:
            error, status = failure.message, failure.status
        else:
            request.session[PENDING] = {
                "number": number,
                "channel": form.cleaned_data["channel"],
            }
            return redirect("portal:verify")
    return render(
        request,
        "privacy/requests.html",
        {
            "notice": Notice.objects.in_force(),
            "form": form,
            "error": error,
            "proven": proven_number(request),
        },
        status=status,
    )


@never_cache
@require_http_methods(["GET", "POST"])
def verify(request):
    pending = request.session.get(PENDING)
    if not pending:
        return redirect("privacy:requests")
    form = CodeForm(request.POST or None)
    error = None
    if request.method == "POST" and form.is_valid():
        outcome = services.check_code(
            phone_number=pending["number"], code=form.cleaned_data["code"], ip=_client_ip(request)
        )
        if outcome.verified:
            request.session.cycle_key()  # a new session once the number is proven
            request.session.pop(PENDING, None)
            request.session[PROVEN] = {
                "number": pending["number"],
                "at": timezone.now().isoformat(),
            }
            return redirect("portal:mine")
        error = outcome.message
    return render(
        request,
        "portal/verify.html",
        {
            "form": form,
            "error": error,
            "number": format_phone_number(pending["number"]),
            "channel": pending["channel"],
        },
        status=400 if error else 200,
    )


@never_cache
def mine(request):
    """The proven number's calls: date, time, length, whether recorded."""
    number = proven_number(request)
    if number is None:
        return redirect("privacy:requests")
    calls = (
        Call.objects.filter(customer__phone_number=number)
        .prefetch_related("recordings")
        .order_by("-started_at")[:100]
    )
    return render(
        request,
        "portal/mine.html",
        {"calls": calls, "number": format_phone_number(number)},
    )


@require_http_methods(["POST"])
def leave(request):
    request.session.pop(PROVEN, None)
    request.session.pop(PENDING, None)
    return redirect("privacy:requests")
