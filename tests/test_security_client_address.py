"""Issue 14, row 2: behind the TLS proxy, the client's address is the one the proxy saw.

``X-Forwarded-For`` and ``X-Forwarded-Proto`` are believed only from ``TRUSTED_PROXIES``;
the client is the right-most address of ``X-Forwarded-For`` that is not a trusted proxy.
Rate limits and the audit trail use it, so two customers behind the proxy have their own
limits, and a client cannot pick its own address or claim HTTPS by writing the headers."""

import ipaddress
import re

import pytest
from django.core.cache import cache
from django.urls import reverse

from audit.models import AccessEvent

from .helpers.portal import find_call
from .helpers.project import run_project
from .test_playback import stored_recording

pytestmark = pytest.mark.django_db

START = reverse("portal:start")
PROXY = "10.0.0.2"
ATTACKER = "203.0.113.5"
CUSTOMER = "198.51.100.20"


@pytest.fixture(autouse=True)
def _behind_the_proxy(twilio, settings):
    settings.TWILIO_VERIFY_SERVICE_SID = ""
    settings.TRUSTED_PROXIES = [ipaddress.ip_network("10.0.0.0/24")]
    cache.clear()
    yield
    cache.clear()


def ask_code(client, n, *, remote, forwarded=None):
    headers = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        headers["HTTP_X_FORWARDED_FOR"] = forwarded
    number = f"+8190777700{n:02d}"
    return client.post(START, {"phone_number": number, "channel": "sms"}, **headers).status_code


def test_ten_code_requests_from_one_client_do_not_get_another_client_a_429(client, twilio):
    attacker = [ask_code(client, n, remote=PROXY, forwarded=ATTACKER) for n in range(11)]
    customer = ask_code(client, 50, remote=PROXY, forwarded=CUSTOMER)

    assert attacker == [302] * 10 + [429]
    assert customer == 302
    assert len(twilio.state.messages) == 11


def test_a_client_cannot_escape_its_limit_by_writing_its_own_forwarded_for(client, twilio):
    # The proxy appends the address it saw; whatever the client wrote is to its left.
    answers = [
        ask_code(client, n, remote=PROXY, forwarded=f"192.0.2.{n}, {ATTACKER}") for n in range(11)
    ]

    assert answers == [302] * 10 + [429]


def test_forwarded_for_from_an_untrusted_sender_is_ignored(client, twilio):
    answers = [
        ask_code(client, n, remote="192.0.2.99", forwarded=f"198.51.100.{n}") for n in range(11)
    ]

    assert answers == [302] * 10 + [429]


def test_audit_rows_carry_the_clients_address_not_the_proxys(client, twilio, notice, operator):
    recording = stored_recording(operator)
    number = "+819011112222"
    recording.call.customer.phone_number = number
    recording.call.customer.save()
    before = AccessEvent.objects.count()
    behind = {"REMOTE_ADDR": PROXY, "HTTP_X_FORWARDED_FOR": CUSTOMER}
    client.post(START, {"phone_number": number, "channel": "sms"}, **behind)
    code = re.search(r"\b(\d{6})\b", twilio.state.messages[-1]["body"]).group(1)
    client.post(reverse("portal:verify"), {"code": code}, **behind)
    find_call(client, recording.call)

    response = client.post(
        reverse("portal:mine"), {"kind": "hear", "calls": [str(recording.call.pk)]}, **behind
    )

    assert response.status_code == 302
    written = AccessEvent.objects.order_by("seq")[before:]
    assert written and {event.ip for event in written} == {CUSTOMER}


def test_forwarded_proto_from_an_untrusted_address_does_not_make_the_request_secure(
    client, settings
):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_SSL_REDIRECT = True

    direct = client.get(START, REMOTE_ADDR="192.0.2.99", HTTP_X_FORWARDED_PROTO="https")
    proxied = client.get(START, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_PROTO="https")

    assert direct.status_code == 301
    assert direct["Location"].startswith("https://")
    assert proxied.status_code == 200


@pytest.mark.integration
def test_a_bad_trusted_proxies_value_stops_the_start_naming_it():
    result = run_project(["manage.py", "check"], TRUSTED_PROXIES="10.0.0.0/8,proxy.local")

    assert result.returncode != 0
    assert "ImproperlyConfigured: TRUSTED_PROXIES:" in result.stderr


@pytest.mark.integration
def test_behind_a_tls_proxy_the_proxies_must_be_named():
    result = run_project(["manage.py", "check"], BEHIND_TLS_PROXY="true")

    assert result.returncode != 0
    assert "ImproperlyConfigured: TRUSTED_PROXIES:" in result.stderr
