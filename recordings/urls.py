from django.urls import path

from . import views

app_name = "recordings"

urlpatterns = [
    path("<int:pk>/playback/", views.start_playback, name="play"),
    path("audio/<str:token>/", views.audio, name="audio"),
]
