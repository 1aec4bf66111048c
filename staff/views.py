"""The admin's second-factor steps: the code after the password, and enrolment."""

import io
from base64 import b32encode
from urllib.parse import urlencode

import qrcode
import qrcode.image.svg
from django import forms
from django.contrib.admin import site
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django_otp import login as otp_login
from django_otp import user_has_device

from . import services


class CodeForm(forms.Form):
    code = forms.CharField(label=gettext_lazy("Code"), max_length=32, strip=True)


def _next(request):
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return "/admin/"


def _context(request, **extra):
    return {**site.each_context(request), "next": _next(request), **extra}


def _qr_svg(uri):
    image = qrcode.make(uri, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    buffer = io.BytesIO()
    image.save(buffer)
    # Generated here from our own URI, not user input: safe to inline.
    return mark_safe(buffer.getvalue().decode())  # noqa: S308


@never_cache
@login_required(login_url="admin:login")
def verify(request):
    """Ask for the TOTP code (or a recovery code) after the password."""
    if not user_has_device(request.user):
        return redirect(f"{_url('staff:otp-enrol')}?{urlencode({'next': _next(request)})}")
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        device = services.verify(
            user=request.user, token=form.cleaned_data["code"], request=request
        )
        if device is not None:
            otp_login(request, device)
            return redirect(_next(request))
        form.add_error("code", _("The code is not correct, or it was already used. Try again."))
    return render(
        request, "staff/otp_verify.html", _context(request, form=form, title=_("Second factor"))
    )


@never_cache
@login_required(login_url="admin:login")
def enrol(request):
    """Set up an authenticator app: QR code and secret, then a code from the app."""
    if user_has_device(request.user) and not request.user.is_verified():
        return redirect(f"{_url('staff:otp-verify')}?{urlencode({'next': _next(request)})}")
    device = services.pending_device(request.user)
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        result = services.confirm_enrolment(
            user=request.user, token=form.cleaned_data["code"], request=request
        )
        if result is not None:
            confirmed, codes = result
            otp_login(request, confirmed)
            return render(
                request,
                "staff/otp_recovery_codes.html",
                _context(request, codes=codes, title=_("Recovery codes")),
            )
        form.add_error("code", _("The code is not correct. Check the time on your phone."))
    return render(
        request,
        "staff/otp_enrol.html",
        _context(
            request,
            form=form,
            title=_("Set up your second factor"),
            uri=device.config_url,
            secret=_base32(device),
            qr=_qr_svg(device.config_url),
        ),
    )


def _base32(device):
    return b32encode(device.bin_key).decode()


def _url(name):
    return reverse(name)
