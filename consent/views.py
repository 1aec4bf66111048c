from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme

from contactcenter.models import Operator
from privacy.models import Notice

from .middleware import SESSION_KEY
from .models import ConsentRecord
from .services import acknowledge_recording


@login_required(login_url="admin:login")
def acknowledge(request):
    """The operator's first page: read how and why their calls are recorded, then agree."""
    operator = Operator.objects.filter(user=request.user).first()
    if operator is None:
        raise Http404
    next_url = request.POST.get("next") or request.GET.get("next") or "/admin/"
    if not url_has_allowed_host_and_scheme(next_url, {request.get_host()}, request.is_secure()):
        next_url = "/admin/"
    error = None
    if request.method == "POST":
        if request.POST.get("agree") == "yes":
            acknowledge_recording(
                operator=operator, by=request.user, method=ConsentRecord.Method.WEB_FORM
            )
            request.session[SESSION_KEY] = True
            return redirect(next_url)
        error = True
    notice = Notice.objects.in_force()
    return render(
        request,
        "consent/acknowledge.html",
        {
            "operator": operator,
            "notice": notice,
            "purposes": notice.notice_purposes.select_related("purpose") if notice else [],
            "next": next_url,
            "error": error,
        },
        status=400 if error else 200,
    )
