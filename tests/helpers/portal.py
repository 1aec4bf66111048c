"""The caller's side of the portal: after proving the number, a call is shown only once the
caller gives its day and time (portal/ownership.py)."""

import re

from django.urls import reverse
from django.utils import timezone


def when(call):
    """The day and time of ``call`` as the caller types them (local time)."""
    local = timezone.localtime(call.started_at)
    return local.date().isoformat(), local.strftime("%H:%M")


def find_call(client, call):
    """Look ``call`` up on "your calls", as the caller does, and check it was found."""
    day, at = when(call)
    response = client.post(reverse("portal:mine"), {"find": "1", "day": day, "time": at})
    assert response.status_code == 302, response.content.decode()[:500]
    return response


def find_call_in_page(page, call):
    """The same in a browser: fill in the day and time and press 「通話を探す」."""
    day, at = when(call)
    page.get_by_label("お電話の日付").fill(day)
    page.get_by_label("おおよその時刻").fill(at)
    page.get_by_role("button", name="通話を探す").click()
    page.wait_for_load_state()


def sent_code(twilio, channel):
    """The portal's last code: read out in our call (digits separated by 「、」), or in the SMS."""
    if channel == "call":
        said = twilio.state.outbound_calls[-1]["twiml"]
        return "".join(re.search(r"((?:\d、){5}\d)", said).group(1).split("、"))
    return re.search(r"\b(\d{6})\b", twilio.state.messages[-1]["body"]).group(1)


def prove(client, twilio, number, channel="sms"):
    """The caller proves ``number`` with the code sent to it, and lands on "your calls"."""
    client.post(reverse("portal:start"), {"phone_number": number, "channel": channel})
    response = client.post(reverse("portal:verify"), {"code": sent_code(twilio, channel)})
    assert response["Location"] == reverse("portal:mine")
    return response
