"""The access audit trail: who played, downloaded, exported, held or purged what, and when.

Append-only and tamper-evident. Each ``AccessEvent`` carries its position in the trail
(``seq``) and a SHA-256 over its own content and the previous event's hash, so editing,
removing or reordering a row breaks the chain at that row (``audit.services.verify_chain``).
The application never changes or deletes an event; on PostgreSQL a trigger refuses UPDATE,
DELETE and TRUNCATE from anyone else too (migration ``0002_append_only_guard``).

Events are written only through ``audit.services.record`` and ``record_many``.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class AuditTrailIsAppendOnly(Exception):
    """Raised when code tries to change or delete an access event."""


class AccessEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AuditTrailIsAppendOnly("access events cannot be changed")

    def delete(self):
        raise AuditTrailIsAppendOnly("access events cannot be deleted")


class AccessEvent(models.Model):
    class Action(models.TextChoices):
        PLAYBACK = "playback", _("Playback")
        DOWNLOAD = "download", _("Download")
        EXPORT = "export", _("Audit export")
        HOLD_PLACED = "hold_placed", _("Legal hold placed")
        HOLD_RELEASED = "hold_released", _("Legal hold released")
        PURGE = "purge", _("Purge")
        KEY_ROTATION = "key_rotation", _("Key rotation")
        REFUSED = "refused", _("Access refused")
        NOTICE_PUBLISHED = "notice_published", _("Notice published")
        TRAINING_MARKED = "training_marked", _("Marked as training material")
        TRAINING_REVIEW = "training_review", _("Training review")
        REQUEST_RECEIVED = "request_received", _("Customer request received")
        REQUEST_DECIDED = "request_decided", _("Customer request decided")
        LOGIN_LOCKED_OUT = "login_locked_out", _("Login locked out")
        MFA_ENROLLED = "mfa_enrolled", _("Second factor enrolled")
        MFA_RECOVERY_USED = "mfa_recovery_used", _("Recovery code used")
        MFA_RESET = "mfa_reset", _("Second factor reset")
        THIRD_PARTY_PROVISION = "third_party_provision", _("Provided to a third party")
        PROVISION_RECORD_EXPIRED = "provision_record_expired", _("Provision record deleted")
        CROSS_BORDER_CHECK = "cross_border_check", _("Cross-border recipient checked")
        ORGANISATION_CHANGED = "organisation_changed", _("Organisation details changed")
        COMPLIANCE_REPORT = "compliance_report", _("Compliance report produced")
        INCIDENT_RECORDED = "incident_recorded", _("Incident recorded")
        INCIDENT_CHANGED = "incident_changed", _("Incident changed")
        INCIDENT_SCOPED = "incident_scoped", _("Incident scoped")
        INCIDENT_ENCRYPTION_TEST = "incident_encryption_test", _("Encryption test of an incident")
        INCIDENT_REPORTED = "incident_reported", _("Incident reported to the PPC")
        INCIDENT_NOTIFIED = "incident_notified", _("Persons notified of an incident")

    seq = models.PositiveBigIntegerField(
        _("sequence number"),
        unique=True,
        help_text=_("Position in the trail: 1, 2, 3, … with no gaps."),
    )
    occurred_at = models.DateTimeField(_("occurred at"), default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        verbose_name=_("user"),
    )
    actor_label = models.CharField(
        _("by"),
        max_length=150,
        help_text=_("The user name, or the process that acted when no person did."),
    )
    action = models.CharField(_("action"), max_length=32, choices=Action.choices)
    # The recording's id, not a foreign key: the trail is the lowest layer and knows no app
    # above it (docs/architecture.md). A recording's row is never deleted (a purge keeps it,
    # with a tombstone), so the id always names it.
    recording_id = models.BigIntegerField(_("recording"), null=True, blank=True)
    # Copied so that the row reads on its own, whatever becomes of the recording.
    recording_sid = models.CharField(_("recording SID"), max_length=34, blank=True)
    purpose = models.CharField(_("purpose code"), max_length=64, blank=True)
    detail = models.JSONField(_("detail"), default=dict)
    ip = models.GenericIPAddressField(_("IP address"), null=True)
    user_agent = models.CharField(_("browser"), max_length=300, blank=True)
    previous_hash = models.CharField(_("previous event's hash"), max_length=64)
    hash = models.CharField(_("hash"), max_length=64, unique=True)

    objects = AccessEventQuerySet.as_manager()

    class Meta:
        verbose_name = _("access event")
        verbose_name_plural = _("access events")
        ordering = ["seq"]
        indexes = [
            models.Index(fields=["recording_id", "occurred_at"], name="access_event_recording_idx"),
            models.Index(fields=["action", "occurred_at"], name="access_event_action_idx"),
            # The list's searches (audit/admin.py): each an exact value on its own index.
            models.Index(fields=["recording_sid"], name="access_event_sid_idx"),
            models.Index(fields=["actor_label"], name="access_event_actor_label_idx"),
            models.Index(fields=["ip"], name="access_event_ip_idx"),
        ]

    def __str__(self):
        return f"#{self.seq} {self.get_action_display()} — {self.actor_label}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AuditTrailIsAppendOnly("access events cannot be changed")
        # Always an INSERT: an event given an existing id must not overwrite that row.
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AuditTrailIsAppendOnly("access events cannot be deleted")
