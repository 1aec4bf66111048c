"""Malformed input is refused with 400 or 416 and a message, never a 500 (issue 14, row 8):
a Range header with a 4,300-digit number, JSON nested 1,000 levels, ``?ip=not-an-ip`` on the
audit trail, ``?q=%00`` on the training list, a purpose over 64 characters on the playback
form. Refusals of access to audio are in the audit trail.

Run on PostgreSQL too (its inet cast and its NUL refusal are where the 500s came from):
``DATABASE_URL=postgres://postgres@127.0.0.1:5432/test_d pytest tests/test_security_bad_input.py``
"""

import json
import secrets
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from audit.models import AccessEvent
from portal import requests as portal_requests
from portal.models import CustomerRequest, ListeningLink
from twilio_emulator.server import synthetic_wav

from . import factories
from .helpers.second_factor import VerifiedClient

pytestmark = pytest.mark.django_db

AUDIO = synthetic_wav(1)
HUGE = "9" * 4300
NUMBER = "+819011112222"


@pytest.fixture
def browser():
    """The suite's client (past the second factor), answering a crash with the 500 a visitor
    would see instead of raising it."""
    return VerifiedClient(raise_request_exception=False)


@pytest.fixture
def recording(notice, operator):
    recording = factories.stored_recording(operator, audio=AUDIO)
    recording.call.customer.phone_number = NUMBER
    recording.call.customer.save()
    return recording


def _audio_url(browser, recording, user):
    browser.force_login(user)
    response = browser.post(reverse("recordings:play", args=[recording.pk]), {"purpose": "quality"})
    assert response.status_code == 200, response.content
    return response.json()["url"]


def _listening_token(recording):
    made = CustomerRequest.objects.create(
        phone_number=NUMBER,
        kind="hear",
        due_at=timezone.now() + timedelta(days=7),
        status=CustomerRequest.Status.DONE,
    )
    token = secrets.token_urlsafe(24)
    ListeningLink.objects.create(
        request=made,
        recording=recording,
        token_hash=portal_requests.token_hash(token),
        expires_at=timezone.now() + timedelta(hours=48),
        max_plays=3,
    )
    return token


# header, status, the bytes it must answer (None: refused)
HUGE_RANGES = [
    (f"bytes={HUGE}-", 416, None),
    (f"bytes={HUGE}-{HUGE}", 416, None),
    (f"bytes=0-{HUGE}", 206, slice(0, None)),
    (f"bytes=-{HUGE}", 206, slice(0, None)),
    (f"bytes=10-{HUGE}", 206, slice(10, None)),
    (f"bytes={'0' * 4300}5-9", 206, slice(5, 10)),
]


@pytest.mark.parametrize(("header", "status", "part"), HUGE_RANGES)
def test_a_range_with_thousands_of_digits_is_answered_not_a_500(
    browser, recording, supervisor, header, status, part
):
    url = _audio_url(browser, recording, supervisor)

    response = browser.get(url, HTTP_RANGE=header)

    assert response.status_code == status
    if part is None:
        assert response["Content-Range"] == f"bytes */{len(AUDIO)}"
        assert "範囲" in response.content.decode()
    else:
        assert b"".join(response.streaming_content) == AUDIO[part]


@pytest.mark.parametrize(("header", "status", "part"), HUGE_RANGES[:3])
def test_the_portals_anonymous_audio_url_too(browser, recording, header, status, part):
    token = _listening_token(recording)
    assert browser.get(reverse("portal:listen", args=[token])).status_code == 200

    response = browser.get(reverse("portal:listen-audio", args=[token]), HTTP_RANGE=header)

    assert response.status_code == status
    if part is not None:
        assert b"".join(response.streaming_content) == AUDIO[part]


def test_json_nested_a_thousand_levels_is_a_400_with_a_message(browser, operator):
    call = factories.CallFactory(operator=operator)
    browser.force_login(operator.user)
    nested = "[" * 1000 + "]" * 1000

    response = browser.post(
        reverse("api:call-recording", args=[call.sid]),
        nested,
        content_type="application/json",
    )

    assert response.status_code == 400
    assert "JSON" in response.json()["detail"]


def test_ordinary_malformed_json_is_still_a_400(browser, operator):
    call = factories.CallFactory(operator=operator)
    browser.force_login(operator.user)

    response = browser.post(
        reverse("api:call-recording", args=[call.sid]), "{", content_type="application/json"
    )

    assert response.status_code == 400


@pytest.mark.parametrize(
    "view", ["admin:audit_accessevent_changelist", "admin:audit_accessevent_export"]
)
@pytest.mark.parametrize("query", ["ip=not-an-ip", "ip__exact=999.1.1.1", "ip__in=192.0.2.1,nope"])
def test_a_filter_on_a_non_address_is_a_400_naming_it(browser, compliance_officer, view, query):
    browser.force_login(compliance_officer)

    response = browser.get(reverse(view) + "?" + query)

    assert response.status_code == 400
    assert "IP" in response.content.decode()
    assert not AccessEvent.objects.filter(action=AccessEvent.Action.EXPORT).exists()


def test_a_filter_on_a_real_address_still_works(browser, compliance_officer):
    browser.force_login(compliance_officer)

    response = browser.get(reverse("admin:audit_accessevent_changelist") + "?ip=192.0.2.1")

    assert response.status_code == 200


@pytest.mark.parametrize("query", ["q=%00", "q=abc%00def", "page=%00", "%00=1"])
def test_a_nul_in_the_training_lists_query_is_a_400_with_a_message(browser, operator, query):
    browser.force_login(operator.user)

    response = browser.get(reverse("training:list") + "?" + query)

    assert response.status_code == 400
    assert "NUL" in response.content.decode()


def test_a_nul_in_the_admins_search_is_a_400_too(browser, compliance_officer):
    browser.force_login(compliance_officer)

    response = browser.get(reverse("admin:audit_accessevent_changelist") + "?q=%00")

    assert response.status_code == 400


def test_a_purpose_over_64_characters_is_a_400_in_japanese_and_audited(
    browser, recording, supervisor
):
    browser.force_login(supervisor)
    purpose = "q" * 65 + "<script>"

    response = browser.post(reverse("recordings:play", args=[recording.pk]), {"purpose": purpose})

    assert response.status_code == 400
    with translation.override("ja"):
        assert response.json()["error"] == _("Choose the purpose of use from the list.")
    refusal = AccessEvent.objects.get(action=AccessEvent.Action.REFUSED)
    assert refusal.recording_id == recording.pk
    assert refusal.purpose == purpose[:64]
    assert refusal.detail == {"reason": "purpose_too_long", "length": len(purpose)}
    assert not AccessEvent.objects.filter(action=AccessEvent.Action.PLAYBACK).exists()


def test_an_unknown_side_is_refused_and_audited(browser, recording, supervisor):
    browser.force_login(supervisor)

    response = browser.post(
        reverse("recordings:play", args=[recording.pk]), {"purpose": "quality", "channel": "x"}
    )

    assert response.status_code == 400
    refusal = AccessEvent.objects.get(action=AccessEvent.Action.REFUSED)
    assert refusal.detail == {"reason": "bad_channel", "channel": "x"}


def test_every_row_8_input_together_gives_no_500(browser, recording, supervisor, operator):
    """The figure for docs/security.md: each malformed request of row 8, none a 500."""
    url = _audio_url(browser, recording, supervisor)
    token = _listening_token(recording)
    browser.get(reverse("portal:listen", args=[token]))
    call = factories.CallFactory(operator=operator)
    attempts = [
        lambda: browser.get(url, HTTP_RANGE=f"bytes={HUGE}-"),
        lambda: browser.get(url, HTTP_RANGE=f"bytes=0-{HUGE}"),
        lambda: browser.get(
            reverse("portal:listen-audio", args=[token]), HTTP_RANGE=f"bytes={HUGE}-"
        ),
        lambda: browser.post(
            reverse("api:call-recording", args=[call.sid]),
            json.dumps({"action": "pause"})[:-1] + ', "x": ' + "[" * 1000 + "]" * 1000 + "}",
            content_type="application/json",
        ),
        lambda: browser.get(reverse("admin:audit_accessevent_changelist") + "?ip=not-an-ip"),
        lambda: browser.get(reverse("admin:audit_accessevent_export") + "?ip=not-an-ip"),
        lambda: browser.get(reverse("training:list") + "?q=%00"),
        lambda: browser.post(
            reverse("recordings:play", args=[recording.pk]), {"purpose": "p" * 65}
        ),
    ]

    statuses = [attempt().status_code for attempt in attempts]

    assert [s for s in statuses if s >= 500] == []
    assert all(s in {206, 400, 416} for s in statuses), statuses
