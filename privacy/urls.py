from django.urls import path

from . import views

app_name = "privacy"

urlpatterns = [
    path("privacy/", views.current_notice, name="notice-current"),
    path("privacy/notices/", views.notice_list, name="notice-list"),
    path("privacy/notices/<int:version>/", views.notice_detail, name="notice-detail"),
    path("privacy/notices/<int:version>.json", views.notice_json, name="notice-json"),
]
