from django.urls import path
from drf_spectacular.views import SpectacularAPIView

from . import api

app_name = "api"

urlpatterns = [
    path("", api.ApiRoot.as_view(), name="root"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("calls/live/", api.LiveCalls.as_view(), name="live-calls"),
    path("calls/<str:sid>/recording/", api.CallRecording.as_view(), name="call-recording"),
]
