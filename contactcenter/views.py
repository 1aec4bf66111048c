from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from .health import overall, run_checks


@never_cache
@require_GET
def healthz(request):
    """200 when database, broker and recording storage all work, else 503; a stopped
    pipeline is reported as "degraded" and still answers 200. No login."""
    checks = run_checks()
    status, http_status = overall(checks)
    return JsonResponse({"status": status, "checks": checks}, status=http_status)


# --- error pages: Japanese first (the request's language), each with a way forward ----------


def _error(request, template, status):
    staff = bool(getattr(getattr(request, "user", None), "is_staff", False))
    return render(request, template, {"staff": staff}, status=status)


def bad_request(request, exception=None):
    return _error(request, "400.html", 400)


def permission_denied(request, exception=None):
    return _error(request, "403.html", 403)


def page_not_found(request, exception=None):
    return _error(request, "404.html", 404)


def server_error(request):
    return render(request, "500.html", {"staff": False}, status=500)


def csrf_failure(request, reason=""):
    return _error(request, "403_csrf.html", 403)


class EmptyErrorBodyMiddleware:
    """A 403 or 405 answered with no body (``HttpResponseNotAllowed`` of ``require_POST``, a
    bare ``HttpResponseForbidden``) becomes a page saying what happened and where to go. The
    machines' endpoints (Twilio's webhooks, the API) keep their plain answers."""

    MACHINE_PATHS = ("/twilio/", "/api/", "/healthz")
    PAGES = {403: "403.html", 405: "405.html"}

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        template = self.PAGES.get(response.status_code)
        if (
            template is None
            or response.streaming
            or response.content
            or request.path_info.startswith(self.MACHINE_PATHS)
        ):
            return response
        page = _error(request, template, response.status_code)
        for header in ("Allow",):
            if header in response:
                page[header] = response[header]
        return page
