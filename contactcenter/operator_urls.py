from django.urls import path

from . import operator_views

app_name = "contactcenter"

urlpatterns = [
    path("calls/", operator_views.live_calls, name="live-calls"),
    path("calls/<str:sid>/recording/", operator_views.control, name="control-recording"),
    path("calls/<str:sid>/payment/", operator_views.payment, name="call-payment"),
]
