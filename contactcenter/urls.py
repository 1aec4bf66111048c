from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from . import views

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="privacy:notice-current", permanent=False)),
    path("healthz", views.healthz, name="healthz"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("privacy.urls")),
    path("requests/", include("portal.urls")),
    path("operator/", include("consent.urls")),
    path("operator/", include("contactcenter.operator_urls")),
    path("api/", include("contactcenter.api_urls")),
    path("recordings/", include("recordings.urls")),
    path("operator/training/", include("training.urls")),
    path("twilio/", include("telephony.urls")),
    path("admin/otp/", include("staff.urls")),
    path("admin/dashboard/", include("backoffice.urls")),
    path("incidents/", include("incidents.urls")),
    path("admin/", admin.site.urls),
]

handler400 = "contactcenter.views.bad_request"
handler403 = "contactcenter.views.permission_denied"
handler404 = "contactcenter.views.page_not_found"
handler500 = "contactcenter.views.server_error"
