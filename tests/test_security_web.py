"""Web hardening (issue 14, row 9): a Content-Security-Policy without 'unsafe-inline' on every
kind of page, no inline script or style left in our templates, Permissions-Policy and
Referrer-Policy, and Secure and SameSite on every cookie in production."""

import json
import re
from pathlib import Path

import pytest
from django.urls import reverse

from .helpers.project import production_variables, run_project

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent


def directives(response):
    header = response.headers.get("Content-Security-Policy")
    assert header, "no Content-Security-Policy header"
    return {
        name: values
        for name, *values in (part.split() for part in header.split(";") if part.strip())
    }


def assert_strict_policy(response):
    policy = directives(response)
    assert policy["default-src"] == ["'self'"]
    for directive in ("script-src", "style-src", "default-src"):
        assert "'unsafe-inline'" not in policy.get(directive, [])
        assert "'unsafe-eval'" not in policy.get(directive, [])
    assert policy["object-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["media-src"] == ["'self'"]


@pytest.fixture
def pages(notice, operator, supervisor):
    """(url, who) of a public page, the portal, the operators' pages and the admin."""
    return [
        (reverse("privacy:notice-current"), None),
        (reverse("privacy:notice-list"), None),
        (reverse("portal:start"), None),
        (reverse("admin:login"), None),
        (reverse("contactcenter:live-calls"), operator.user),
        (reverse("training:list"), operator.user),
        (reverse("admin:index"), supervisor),
        (reverse("admin:privacy_notice_changelist"), supervisor),
        (reverse("admin:audit_accessevent_changelist"), supervisor),
        (reverse("api:root"), supervisor),
    ]


def test_every_kind_of_page_has_a_strict_content_security_policy(client, pages):
    for url, who in pages:
        client.logout()
        if who is not None:
            client.force_login(who)
        response = client.get(url)
        assert response.status_code == 200, url
        assert_strict_policy(response)


def test_the_audio_is_served_under_the_policy_of_its_page(client, notice, operator, supervisor):
    """The player fetches audio from our own origin (media-src 'self'); no blob: is needed."""
    from .test_playback import stored_recording

    recording = stored_recording(operator)
    client.force_login(supervisor)
    page = client.get(reverse("admin:recordings_recording_change", args=[recording.pk]))

    assert page.status_code == 200
    assert "recordings/player.js" in page.text
    assert "blob:" not in directives(page)["media-src"]


def test_permissions_and_referrer_policies_are_on_every_response(client, notice):
    for url in (reverse("privacy:notice-current"), reverse("portal:start"), "/healthz"):
        response = client.get(url)
        features = dict(
            item.strip().split("=", 1) for item in response["Permissions-Policy"].split(",")
        )
        for feature in ("camera", "microphone", "geolocation", "payment", "usb"):
            assert features[feature] == "()", (url, feature)
        assert response["Referrer-Policy"] == "same-origin"


def test_the_language_cookie_is_same_site_and_http_only(client, notice):
    response = client.post(reverse("set_language"), {"language": "en", "next": "/"})

    cookie = response.cookies["django_language"]
    assert cookie["samesite"] == "Lax"
    assert cookie["httponly"] is True


# --- our templates -------------------------------------------------------------------------

TEMPLATES = sorted(
    path
    for directory in [ROOT / "templates", *ROOT.glob("*/templates")]
    for path in directory.rglob("*.html")
)
INLINE = {
    "an inline <script>": re.compile(r"<script\b(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")"),
    "a <style> element": re.compile(r"<style\b"),
    "a style attribute": re.compile(r"\sstyle\s*="),
    "an event handler attribute": re.compile(r"\son[a-z]+\s*=\s*[\"']", re.IGNORECASE),
    "a javascript: URL": re.compile(r"javascript:", re.IGNORECASE),
}


def test_our_templates_have_no_inline_script_or_style():
    assert len(TEMPLATES) > 20
    found = [
        f"{path.relative_to(ROOT)}:{number}: {what}"
        for path in TEMPLATES
        for number, line in enumerate(path.read_text().splitlines(), 1)
        for what, pattern in INLINE.items()
        if pattern.search(line)
    ]
    assert found == []


def test_the_static_files_our_templates_name_exist():
    """A style or script moved out of a template is a file that collectstatic finds."""
    from django.contrib.staticfiles import finders

    named = {
        name
        for path in TEMPLATES
        for name in re.findall(r"\{%\s*static\s+'([^']+)'", path.read_text())
    }
    assert {"contactcenter/public.css", "contactcenter/admin.css"} <= named
    assert [name for name in sorted(named) if finders.find(name) is None] == []


# --- production ----------------------------------------------------------------------------

PRINT_COOKIE_SETTINGS = """
import django, json
django.setup()
from django.conf import settings
ends = ("COOKIE_SECURE", "COOKIE_SAMESITE", "COOKIE_HTTPONLY")
names = [n for n in dir(settings) if n.endswith(ends)]
print(json.dumps({n: getattr(settings, n) for n in names}))
"""


@pytest.mark.integration
def test_in_production_every_cookie_is_secure_and_same_site():
    result = run_project(["-c", PRINT_COOKIE_SETTINGS], **production_variables())

    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout.strip().splitlines()[-1])
    for cookie in ("SESSION", "CSRF", "LANGUAGE"):
        assert values[f"{cookie}_COOKIE_SECURE"] is True, cookie
        assert values[f"{cookie}_COOKIE_SAMESITE"] in {"Lax", "Strict"}, cookie
    assert values["SESSION_COOKIE_HTTPONLY"] is True
    assert values["LANGUAGE_COOKIE_HTTPONLY"] is True
