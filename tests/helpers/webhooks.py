"""Twilio's side of a webhook: signed form posts."""

import xml.etree.ElementTree as ET

from django.conf import settings


def twilio_post(client, path, params, *, query="", signature=None, token=None):
    """POST as Twilio does: form parameters signed over PUBLIC_BASE_URL + path."""
    from twilio.request_validator import RequestValidator

    url = path + (f"?{query}" if query else "")
    if signature is None:
        signature = RequestValidator(settings.TWILIO_AUTH_TOKEN).compute_signature(
            settings.PUBLIC_BASE_URL + url, params
        )
    headers = {"HTTP_X_TWILIO_SIGNATURE": signature}
    if token:
        headers["HTTP_I_TWILIO_IDEMPOTENCY_TOKEN"] = token
    return client.post(url, params, **headers)


def incoming_call(call_sid, **extra):
    """The form fields of Twilio's first webhook of an inbound call, ``extra`` on top."""
    return {
        "CallSid": call_sid,
        "AccountSid": settings.TWILIO_ACCOUNT_SID,
        "From": "+81312345678",
        "To": "+815012345678",
        "CallStatus": "ringing",
        "Direction": "inbound",
        **extra,
    }


def parse_twiml(response):
    """The TwiML of a 200 answer, parsed: its root is ``<Response>``."""
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/xml")
    root = ET.fromstring(response.content)
    assert root.tag == "Response"
    return root
