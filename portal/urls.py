from django.urls import path

from . import views

app_name = "portal"

urlpatterns = [
    path("", views.start, name="start"),
    path("verify/", views.verify, name="verify"),
    path("mine/", views.mine, name="mine"),
    path("leave/", views.leave, name="leave"),
    path("sent/", views.sent, name="sent"),
    path("listen/<str:token>/", views.listen, name="listen"),
    path("listen/<str:token>/audio/", views.listen_audio, name="listen-audio"),
    path("listen/<str:token>/call/", views.listen_by_phone, name="listen-by-phone"),
    path("listen/<str:token>/copy.zip", views.copy_download, name="copy-download"),
    path("phone-audio/<str:signed>/", views.phone_audio, name="phone-audio"),
]
