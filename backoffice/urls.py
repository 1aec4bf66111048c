from django.contrib import admin
from django.urls import path

from . import views

app_name = "backoffice"

urlpatterns = [
    path("", admin.site.admin_view(views.dashboard), name="dashboard"),
    path(
        "compliance/",
        admin.site.admin_view(views.compliance_report),
        name="compliance-report",
    ),
]
