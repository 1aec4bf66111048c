"""Twilio's side of a webhook: signed form posts."""

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
