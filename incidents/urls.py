from django.urls import path

from . import views

app_name = "incidents"

urlpatterns = [
    path("<str:reference>/notice/", views.notice, name="notice"),
]
