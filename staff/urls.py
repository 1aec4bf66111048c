from django.urls import path

from . import views

app_name = "staff"

urlpatterns = [
    path("verify/", views.verify, name="otp-verify"),
    path("enrol/", views.enrol, name="otp-enrol"),
]
