"""Staff accounts (issue 14, row 5 and part of row 7): login lockout, a second factor for
supervisors and compliance officers, idle timeout, playback links ended by logout, API rate.

Each test goes through the real login form, the real second-factor pages and django-otp's
devices; the client is Django's plain one (the suite's ``client`` passes the second factor
for other tests).
"""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.models import AccessEvent
from contactcenter.middleware import IdleSessionTimeoutMiddleware
from contactcenter.roles import SUPERVISOR
from twilio_emulator.server import synthetic_wav

from . import factories
from .factories import UserFactory
from .helpers.project import run_project
from .helpers.second_factor import current_code, force_login_verified, totp_device

pytestmark = pytest.mark.django_db

Action = AccessEvent.Action
PASSWORD = "correct-horse-battery-staple"
ADMIN = "/admin/"


@pytest.fixture
def staff_supervisor(db):
    user = UserFactory(username="sup-mfa", roles=[SUPERVISOR])
    user.set_password(PASSWORD)
    user.save()
    return user


def log_in(client, username, password=PASSWORD, **extra):
    return client.post(
        reverse("admin:login"),
        {"username": username, "password": password, "next": ADMIN},
        **extra,
    )


def enter_code(client, code):
    return client.post(reverse("staff:otp-verify"), {"code": code, "next": ADMIN})


# --- lockout -------------------------------------------------------------------------------


def test_200_wrong_passwords_then_the_right_one_stays_locked_out(staff_supervisor):
    """GIVEN 200 wrong passwords for one user from one address
    THEN the right password is refused too (429), nobody is logged in, the lockout is
    audited, and the same user from another address may still log in."""
    client = Client()
    statuses = [log_in(client, "sup-mfa", f"wrong-{n}").status_code for n in range(200)]
    response = log_in(client, "sup-mfa")
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session
    assert statuses[:4] == [200] * 4  # the form again, with its error
    assert set(statuses[4:]) == {429}  # the fifth failure locks
    assert AccessEvent.objects.filter(action=Action.LOGIN_LOCKED_OUT).exists()

    elsewhere = Client(REMOTE_ADDR="192.0.2.7")
    assert log_in(elsewhere, "sup-mfa").status_code == 302


def test_the_lockout_page_is_in_japanese(staff_supervisor):
    client = Client()
    for n in range(5):
        response = log_in(client, "sup-mfa", f"wrong-{n}")
    assert response.status_code == 429
    assert "ログインの失敗が多すぎます" in response.text


# --- second factor -------------------------------------------------------------------------


def test_a_supervisor_cannot_reach_the_admin_without_a_second_factor(staff_supervisor):
    client = Client()
    totp_device(staff_supervisor)
    assert log_in(client, "sup-mfa").status_code == 302
    response = client.get(ADMIN)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("staff:otp-verify"))
    changelist = client.get(reverse("admin:contactcenter_call_changelist"))
    assert changelist.status_code == 302
    assert client.get("/api/calls/live/").status_code == 403
    assert enter_code(client, "000000").status_code == 200  # wrong: the form again
    assert client.get(ADMIN).status_code == 302


def test_with_a_valid_totp_code_the_supervisor_is_in(staff_supervisor):
    client = Client()
    device = totp_device(staff_supervisor)
    log_in(client, "sup-mfa")
    response = enter_code(client, current_code(device))
    assert response.status_code == 302 and response["Location"] == ADMIN
    assert client.get(ADMIN).status_code == 200


def test_a_supervisor_without_a_device_enrols_with_a_qr_code_and_gets_recovery_codes(
    staff_supervisor,
):
    client = Client()
    log_in(client, "sup-mfa")
    response = client.get(ADMIN)
    assert response["Location"].startswith(reverse("staff:otp-enrol"))
    page = client.get(response["Location"])
    assert page.status_code == 200
    assert "<svg" in page.text and "otpauth://totp/" in page.text
    device = TOTPDevice.objects.get(user=staff_supervisor, confirmed=False)
    done = client.post(reverse("staff:otp-enrol"), {"code": current_code(device), "next": ADMIN})
    assert done.status_code == 200
    codes = StaticToken.objects.filter(device__user=staff_supervisor)
    assert codes.count() == 10
    assert all(code.token in done.text for code in codes)
    assert client.get(ADMIN).status_code == 200
    assert AccessEvent.objects.filter(action=Action.MFA_ENROLLED, actor=staff_supervisor).exists()


def test_a_recovery_code_works_once(staff_supervisor):
    from staff.services import issue_recovery_codes

    totp_device(staff_supervisor)
    code = issue_recovery_codes(staff_supervisor)[0]
    first = Client()
    log_in(first, "sup-mfa")
    assert enter_code(first, code).status_code == 302
    assert first.get(ADMIN).status_code == 200
    assert AccessEvent.objects.filter(action=Action.MFA_RECOVERY_USED).count() == 1

    second = Client()
    log_in(second, "sup-mfa")
    assert enter_code(second, code).status_code == 200  # refused: used up
    assert second.get(ADMIN).status_code == 302


def test_a_reset_by_another_supervisor_is_audited_and_one_cannot_reset_oneself(
    staff_supervisor, supervisor
):
    totp_device(staff_supervisor)
    client = Client()
    force_login_verified(client, supervisor)
    changelist = reverse("admin:otp_totp_totpdevice_changelist")
    theirs = totp_device(staff_supervisor)
    answer = {"action": "reset_second_factor", "_selected_action": [theirs.pk]}
    assert client.post(changelist, answer).status_code == 302
    assert not TOTPDevice.objects.filter(user=staff_supervisor).exists()
    event = AccessEvent.objects.get(action=Action.MFA_RESET)
    assert event.actor == supervisor and event.detail["user"] == "sup-mfa"

    mine = {"action": "reset_second_factor", "_selected_action": [totp_device(supervisor).pk]}
    client.post(changelist, mine)
    assert TOTPDevice.objects.filter(user=supervisor).exists()
    assert AccessEvent.objects.filter(action=Action.MFA_RESET).count() == 1


def test_operators_need_no_second_factor(operator):
    client = Client()
    client.force_login(operator.user)
    assert client.get("/api/calls/live/").status_code == 200


# --- sessions --------------------------------------------------------------------------------


def test_an_idle_session_is_logged_out(supervisor, settings):
    client = Client()
    force_login_verified(client, supervisor)
    assert client.get(ADMIN).status_code == 200
    session = client.session
    idle = settings.SESSION_IDLE_TIMEOUT + 1
    session[IdleSessionTimeoutMiddleware.KEY] -= idle
    session.save()
    response = client.get(ADMIN)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    assert "_auth_user_id" not in client.session


def test_an_active_session_is_kept(supervisor, settings):
    client = Client()
    force_login_verified(client, supervisor)
    client.get(ADMIN)
    session = client.session
    session[IdleSessionTimeoutMiddleware.KEY] -= settings.SESSION_IDLE_TIMEOUT - 60
    session.save()
    assert client.get(ADMIN).status_code == 200


def test_a_playback_link_stops_working_after_logout(notice, operator, supervisor):
    recording = factories.stored_recording(operator, audio=synthetic_wav(2))
    client = Client()
    force_login_verified(client, supervisor)
    started = client.post(reverse("recordings:play", args=[recording.pk]), {"purpose": "quality"})
    url = started.json()["url"]
    assert client.get(url).status_code == 200
    client.post(reverse("admin:logout"))
    assert client.get(url).status_code == 403
    force_login_verified(client, supervisor)  # a new login: a new session
    response = client.get(url)
    assert response.status_code == 403
    assert "ログアウト" in response.content.decode()


# --- API rate ---------------------------------------------------------------------------------


def test_the_api_answers_429_in_japanese_after_the_rate(operator, settings):
    """120 requests a minute per user (API_THROTTLE_USER_RATE), then 429."""
    limit = int(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["user"].split("/")[0])
    key = f"throttle_user_{operator.user.pk}"
    cache.delete(key)
    client = Client()
    client.force_login(operator.user)
    try:
        statuses = [client.get("/api/calls/live/").status_code for _ in range(limit + 5)]
        over = client.get("/api/calls/live/")
    finally:
        cache.delete(key)
    assert statuses[:limit] == [200] * limit
    assert set(statuses[limit:]) == {429}
    assert over.status_code == 429
    assert "リクエストが多すぎます" in over.json()["detail"]
    assert int(over["Retry-After"]) > 0


def test_session_idle_timeout_is_30_minutes_by_default(settings):
    assert settings.SESSION_IDLE_TIMEOUT == 30 * 60
    assert settings.AXES_FAILURE_LIMIT == 5
    assert timedelta(minutes=30) == settings.AXES_COOLOFF_TIME


@pytest.mark.integration
@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({"SESSION_IDLE_TIMEOUT": "10"}, "SESSION_IDLE_TIMEOUT"),
        ({"LOGIN_FAILURE_LIMIT": "none"}, "LOGIN_FAILURE_LIMIT"),
        ({"LOGIN_LOCKOUT_MINUTES": "0"}, "LOGIN_LOCKOUT_MINUTES"),
        ({"API_THROTTLE_USER_RATE": "lots"}, "API_THROTTLE_USER_RATE"),
        ({"API_THROTTLE_ANON_RATE": "30/fortnight"}, "API_THROTTLE_ANON_RATE"),
    ],
)
def test_a_bad_staff_account_setting_stops_the_start_naming_it(variables, named):
    result = run_project(["manage.py", "check"], **variables)
    assert result.returncode != 0
    assert f"ImproperlyConfigured: {named}:" in result.stderr
