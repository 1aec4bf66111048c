from django.urls import path

from . import views

app_name = "consent"

urlpatterns = [
    path("recording-acknowledgement/", views.acknowledge, name="acknowledge"),
]
