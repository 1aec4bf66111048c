from django.urls import path

from . import views

app_name = "portal"

urlpatterns = [
    path("verify/", views.verify, name="verify"),
    path("mine/", views.mine, name="mine"),
    path("leave/", views.leave, name="leave"),
]
