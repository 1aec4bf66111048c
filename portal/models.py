"""The customer portal: callers prove they hold a phone number before they see anything."""

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class PhoneVerification(models.Model):
    """A one-time code sent to a phone number by SMS or by a voice call.

    Only a keyed hash of the code is kept. A code is valid for ten minutes, once, and allows
    five attempts; with Twilio Verify the code never reaches us at all.
    """

    class Channel(models.TextChoices):
        SMS = "sms", _("Text message (SMS)")
        CALL = "call", _("Voice call")

    phone_number = models.CharField(_("phone number"), max_length=16, db_index=True)
    channel = models.CharField(_("sent by"), max_length=4, choices=Channel.choices)
    code_hash = models.CharField(_("code (keyed hash)"), max_length=64, blank=True)
    via_twilio_verify = models.BooleanField(_("checked by Twilio Verify"), default=False)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    expires_at = models.DateTimeField(_("expires at"))
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    verified_at = models.DateTimeField(_("verified at"), null=True, blank=True)
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)

    class Meta:
        verbose_name = _("phone verification")
        verbose_name_plural = _("phone verifications")
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.phone_number} ({self.created_at:%Y-%m-%d %H:%M})"
