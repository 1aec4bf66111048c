"""Supervisors and compliance officers pass a second factor (TOTP) before the admin.

``VerifiedClient`` is the suite's ``client``: its ``force_login`` also marks the session as
verified with a TOTP device of the user's, as ``django_otp.login`` does after a right code.
Tests of the second factor itself use Django's plain ``Client``.
"""

import time

from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from contactcenter.roles import requires_second_factor


def totp_device(user):
    """The user's confirmed TOTP device, made if there is none."""
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    return device or TOTPDevice.objects.create(user=user, name="test", confirmed=True)


def current_code(device):
    """A code the device accepts now: the current step's, or the next one if the current step
    was already used (django-otp refuses a code twice; it allows one step of drift)."""
    device.refresh_from_db()
    otp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    if device.last_t is not None and otp.t() <= device.last_t:
        otp.time = time.time() + device.step
    return f"{otp.token():0{device.digits}d}"


def code_for_key(bin_key, *, step=30, digits=6):
    """The current code of an authenticator holding ``bin_key`` (what a phone app shows)."""
    otp = TOTP(bin_key, step, 0, digits, 0)
    return f"{otp.token():0{digits}d}"


def mark_verified(client, user):
    """Mark ``client``'s session as having passed ``user``'s second factor."""
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = totp_device(user).persistent_id
    session.save()


def verified_login(client, user):
    """Log ``user`` in as if they had entered a TOTP code (django-otp's session key)."""
    Client.force_login(client, user)
    mark_verified(client, user)


force_login_verified = verified_login


class VerifiedClient(Client):
    """Django's test client whose ``force_login`` also passes the second factor of the roles
    that need one."""

    def force_login(self, user, backend=None):
        super().force_login(user, backend)
        if requires_second_factor(user):
            mark_verified(self, user)
