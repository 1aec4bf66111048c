"""A login lockout (django-axes) is written to the audit trail."""

from axes.signals import user_locked_out
from django.dispatch import receiver

from audit import services as audit
from audit.models import AccessEvent


@receiver(user_locked_out)
def audit_lockout(sender, request, username, ip_address, **kwargs):
    audit.record(
        AccessEvent.Action.LOGIN_LOCKED_OUT,
        actor_label=(username or "")[:150],
        detail={"username": username or "", "ip": ip_address or ""},
        request=request,
    )
