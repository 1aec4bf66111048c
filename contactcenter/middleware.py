import time
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import logout
from django.http import HttpResponseForbidden
from django.middleware.locale import LocaleMiddleware
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django_otp import user_has_device

from .proxies import forwarded_by_trusted_proxy
from .roles import requires_second_factor


class JapaneseFirstLocaleMiddleware(LocaleMiddleware):
    """Japanese unless the visitor chose another language with the language switch.

    Django's own middleware would follow the browser's Accept-Language header; callers and
    staff of a Japanese contact center get Japanese first, and English only when they ask.
    """

    def process_request(self, request):
        language = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME)
        if language not in dict(settings.LANGUAGES):
            language = settings.LANGUAGE_CODE
        translation.activate(language)
        request.LANGUAGE_CODE = translation.get_language()


class TrustedProxyMiddleware:
    """Forget the forwarded headers of a request that did not come from a trusted proxy.

    Django's ``SECURE_PROXY_SSL_HEADER`` believes ``X-Forwarded-Proto`` from anyone; anyone
    who reaches gunicorn directly could then claim HTTPS and be sent secure cookies over
    plain HTTP. Placed before ``SecurityMiddleware`` so nothing after it sees the claim.
    """

    FORWARDED = ("HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_HOST")

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not forwarded_by_trusted_proxy(request):
            for header in self.FORWARDED:
                request.META.pop(header, None)
        return self.get_response(request)


class IdleSessionTimeoutMiddleware:
    """Log a user out after ``SESSION_IDLE_TIMEOUT`` seconds without a request.

    The time of the last request is kept in the session, written at most once a minute so that
    every page view does not rewrite the session row; the timeout is therefore exact to a
    minute. Logging out flushes the session, which also ends its playback links.
    """

    KEY = "last_activity"
    WRITE_EVERY = 60

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            now = int(time.time())
            last = request.session.get(self.KEY)
            if last is not None and now - last > settings.SESSION_IDLE_TIMEOUT:
                logout(request)
            elif last is None or now - last >= self.WRITE_EVERY:
                request.session[self.KEY] = now
        return self.get_response(request)


class StaffSecondFactorMiddleware:
    """Supervisors and compliance officers reach the admin, the API and recordings only after
    a second factor (django-otp's ``OTPMiddleware`` runs before and sets ``is_verified``).

    The admin redirects to the code step (or to enrolment when the account has no device yet);
    the API and audio answer 403. Other pages are the public site and operators' pages.
    """

    PROTECTED = ("/admin/", "/api/", "/recordings/")
    OPEN = ("/admin/otp/", "/admin/logout/", "/admin/login/", "/admin/jsi18n/")

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        path = request.path_info
        if (
            path.startswith(self.PROTECTED)
            and not path.startswith(self.OPEN)
            and requires_second_factor(request.user)
            and not request.user.is_verified()
        ):
            if not path.startswith("/admin/"):
                return HttpResponseForbidden(
                    _("Enter your second factor in the admin first."),
                    content_type="text/plain; charset=utf-8",
                )
            step = "staff:otp-verify" if user_has_device(request.user) else "staff:otp-enrol"
            return redirect(f"{reverse(step)}?{urlencode({'next': request.get_full_path()})}")
        return self.get_response(request)
