"""The second factor of staff accounts: TOTP enrolment, recovery codes, verification, reset.

Supervisors and compliance officers must pass it (``contactcenter.roles.
requires_second_factor``); every enrolment, use of a recovery code and reset is audited.
"""

import secrets

from django.db import transaction
from django.utils.translation import gettext_lazy as _
from django_otp import devices_for_user
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit import services as audit
from audit.models import AccessEvent
from contactcenter.roles import SUPERVISOR, NotAllowed

RECOVERY_CODES = 10
DEVICE_NAME = "authenticator"
RECOVERY_NAME = "recovery codes"


def pending_device(user):
    """The unconfirmed TOTP device an enrolment shows (made once, kept until confirmed)."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=DEVICE_NAME, confirmed=False)
    return device


@transaction.atomic
def confirm_enrolment(*, user, token, request=None):
    """Confirm the pending TOTP device with a code from the app and issue recovery codes.

    Returns ``(device, codes)``: the confirmed device and the ``RECOVERY_CODES`` single-use
    codes (shown once), or None when the code is wrong. Earlier devices are replaced.
    """
    device = TOTPDevice.objects.select_for_update().filter(user=user, confirmed=False).first()
    if device is None or not device.verify_token(token):
        return None
    TOTPDevice.objects.filter(user=user, confirmed=True).delete()
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    codes = issue_recovery_codes(user)
    audit.record(
        AccessEvent.Action.MFA_ENROLLED,
        actor=user,
        detail={"device": "totp", "recovery_codes": len(codes)},
        request=request,
    )
    return device, codes


def issue_recovery_codes(user):
    """Replace the user's recovery codes with ``RECOVERY_CODES`` new single-use ones."""
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name=RECOVERY_NAME, confirmed=True)
    codes = [secrets.token_hex(5) for _ in range(RECOVERY_CODES)]
    StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in codes)
    return codes


def verify(*, user, token, request=None):
    """The device that accepts ``token`` (a TOTP code, or a recovery code, used up), or None.

    django-otp throttles each device: after a wrong code the next try waits longer.
    """
    token = (token or "").strip().replace(" ", "")
    for device in devices_for_user(user, confirmed=True):
        if isinstance(device, StaticDevice):
            continue
        if device.verify_is_allowed()[0] and device.verify_token(token):
            return device
    for device in StaticDevice.objects.filter(user=user, confirmed=True):
        if device.verify_is_allowed()[0] and device.verify_token(token):
            audit.record(
                AccessEvent.Action.MFA_RECOVERY_USED,
                actor=user,
                detail={"remaining": device.token_set.count()},
                request=request,
            )
            return device
    return None


@transaction.atomic
def reset_second_factor(*, user, by, request=None):
    """Remove ``user``'s TOTP device and recovery codes, so that the next login enrols again.

    Only another supervisor may do it (not the account's holder: a stolen password must not be
    enough to replace the second factor).
    """
    if not by.groups.filter(name=SUPERVISOR).exists():
        raise NotAllowed(_("Only a supervisor may reset another account's second factor."))
    if by.pk == user.pk:
        raise NotAllowed(_("Another supervisor must reset your second factor."))
    removed = TOTPDevice.objects.filter(user=user).delete()[0]
    removed += StaticDevice.objects.filter(user=user).delete()[0]
    audit.record(
        AccessEvent.Action.MFA_RESET,
        actor=by,
        detail={"user": user.get_username(), "devices_removed": removed},
        request=request,
    )
    return removed


@transaction.atomic
def enrol_with_key(*, user, key_hex):
    """Give ``user`` a confirmed TOTP device with a known key (the published demo accounts)."""
    TOTPDevice.objects.filter(user=user).delete()
    return TOTPDevice.objects.create(user=user, name=DEVICE_NAME, key=key_hex, confirmed=True)
