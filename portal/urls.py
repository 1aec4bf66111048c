from django.urls import path

from . import views

app_name = "portal"

urlpatterns = [
    path("", views.start, name="start"),
    path("verify/", views.verify, name="verify"),
    path("mine/", views.mine, name="mine"),
    path("mine/links/<int:pk>/", views.own_link, name="own-link"),
    path("mine/links/<int:pk>/audio/", views.own_link_audio, name="own-link-audio"),
    path("mine/links/<int:pk>/call/", views.own_link_call, name="own-link-call"),
    path("mine/links/<int:pk>/copy.zip", views.own_link_copy, name="own-link-copy"),
    path("leave/", views.leave, name="leave"),
    path("sent/", views.sent, name="sent"),
    path("listen/<str:token>/", views.listen, name="listen"),
    path("listen/<str:token>/audio/", views.listen_audio, name="listen-audio"),
    path("listen/<str:token>/call/", views.listen_by_phone, name="listen-by-phone"),
    path("listen/<str:token>/copy.zip", views.copy_download, name="copy-download"),
    path("phone-audio/<str:signed>/", views.phone_audio, name="phone-audio"),
    path("decision/<str:signed>/", views.decision, name="decision"),
    path("decision/<str:signed>/voice/", views.decision_voice, name="decision-voice"),
]
