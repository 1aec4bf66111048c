"""Twilio's webhooks (configured in the Twilio console; the paths are a contract).

The names are global, not namespaced, because every TwiML we send names them.
"""

from django.urls import path

from . import views

urlpatterns = [
    path("voice/incoming", views.incoming, name="twilio-voice-incoming"),
    path("voice/consent", views.consent, name="twilio-voice-consent"),
    path("voice/fallback", views.fallback, name="twilio-voice-fallback"),
    path("voice/status", views.call_status, name="twilio-voice-status"),
    path("recordings/status", views.recording_status, name="twilio-recordings-status"),
    path("voice/payments", views.payment_status, name="twilio-voice-payments"),
    path("voice/pay", views.pay, name="twilio-voice-pay"),
    path("voice/pay/done", views.pay_done, name="twilio-voice-pay-done"),
]
