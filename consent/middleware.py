from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode

from contactcenter.models import Operator

SESSION_KEY = "recording_acknowledged"


class OperatorAcknowledgementMiddleware:
    """Send an operator who has not yet acknowledged that calls are recorded to the page
    where they do, before anything else (their first login page).

    The answer is remembered in the session, so this costs one query per session.
    """

    EXEMPT_PREFIXES = (
        "/operator/recording-acknowledgement/",
        "/admin/logout/",
        "/admin/login/",
        "/i18n/",
        "/static/",
        "/healthz",
        "/privacy/",
        "/requests/",
        "/twilio/",
    )

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if self.must_acknowledge(request):
            url = reverse("consent:acknowledge")
            return redirect(f"{url}?{urlencode({'next': request.get_full_path()})}")
        return self.get_response(request)

    def must_acknowledge(self, request):
        if not request.user.is_authenticated or request.session.get(SESSION_KEY):
            return False
        if request.path.startswith(self.EXEMPT_PREFIXES):
            return False
        pending = Operator.objects.filter(
            user=request.user, recording_acknowledged_at__isnull=True
        ).exists()
        if not pending:
            request.session[SESSION_KEY] = True
        return pending
