from django.http import JsonResponse
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
