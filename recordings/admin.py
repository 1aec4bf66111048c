from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from . import services
from .models import LegalHold, OutboxMessage, Recording, RecordingPurpose, Tombstone


class RecordingPurposeInline(admin.TabularInline):
    model = RecordingPurpose
    fields = ["purpose", "notice", "usable_until", "allows_training_review"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class LegalHoldInline(admin.TabularInline):
    model = LegalHold
    fields = ["reason", "placed_by", "placed_at", "released_by", "released_at", "release_reason"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class OnHoldFilter(admin.SimpleListFilter):
    title = _("legal hold")
    parameter_name = "held"

    def lookups(self, request, model_admin):
        return [("yes", _("On hold")), ("no", _("Not on hold"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.on_hold()
        if self.value() == "no":
            return queryset.not_on_hold()
        return queryset


class DueForPurgeFilter(admin.SimpleListFilter):
    title = _("due for purge")
    parameter_name = "due"

    def lookups(self, request, model_admin):
        return [("yes", _("Due now")), ("week", _("Within 7 days"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.due_for_purge()
        if self.value() == "week":
            return queryset.due_for_purge(timezone.now() + timezone.timedelta(days=7))
        return queryset


class ReasonForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason"),
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("For example: dispute with case number, or the end of that dispute."),
    )


@admin.register(Recording)
class RecordingAdmin(admin.ModelAdmin):
    list_display = [
        "sid",
        "call",
        "status",
        "duration",
        "retain_until",
        "held",
        "twilio_deleted_at",
        "created_at",
    ]
    list_filter = [
        "status",
        "purposes__purpose",
        OnHoldFilter,
        DueForPurgeFilter,
        ("training_material_at", admin.EmptyFieldListFilter),
    ]
    search_fields = ["sid", "call__sid", "call__from_number"]
    list_select_related = ["call"]
    show_full_result_count = False
    inlines = [RecordingPurposeInline, LegalHoldInline]
    actions = [
        "retry_fetch",
        "place_hold",
        "release_holds",
        "mark_training_material",
        "unmark_training_material",
    ]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "sid",
                    "call",
                    "status",
                    "last_error",
                    "fetch_attempts",
                    "fetch_started_at",
                    "partial_blob_name",
                ]
            },
        ),
        (
            _("At Twilio"),
            {
                "fields": [
                    "duration",
                    "channels",
                    "source",
                    "started_at",
                    "media_url",
                    "twilio_error_code",
                    "twilio_deleted_at",
                ]
            },
        ),
        (
            _("Encrypted copy"),
            {
                "fields": [
                    "blob_name",
                    "key_id",
                    "plaintext_size",
                    "ciphertext_size",
                    "plaintext_sha256",
                    "ciphertext_sha256",
                    "stored_at",
                ]
            },
        ),
        (
            _("Retention"),
            {"fields": ["retain_until", "consent_withdrawn_at", "tombstone_summary"]},
        ),
        (_("Training"), {"fields": ["training_material_at", "training_material_by"]}),
    ]

    def get_readonly_fields(self, request, obj=None):
        # The pipeline owns every field; people act through the actions.
        return [field for fieldset in self.fieldsets for field in fieldset[1]["fields"]]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).with_hold()

    @admin.display(description=_("on hold"), boolean=True)
    def held(self, recording):
        return recording.has_active_hold

    @admin.display(description=_("tombstone"))
    def tombstone_summary(self, recording):
        tombstone = Tombstone.objects.filter(recording=recording).first()
        if tombstone is None:
            return "—"
        by = tombstone.deleted_by or tombstone.deleted_by_system
        return f"{tombstone.get_reason_display()} · {tombstone.deleted_at:%Y-%m-%d %H:%M} · {by}"

    @admin.action(description=_("Fetch again from Twilio"))
    def retry_fetch(self, request, queryset):
        if not request.user.has_perm("recordings.change_recording"):
            raise PermissionDenied
        queued = sum(services.retry_fetch(recording) for recording in queryset)
        skipped = queryset.count() - queued
        self.message_user(
            request,
            _("Queued %(queued)d fetch(es); %(skipped)d skipped (only 取得失敗 can be retried).")
            % {"queued": queued, "skipped": skipped},
            messages.SUCCESS if queued else messages.WARNING,
        )

    @admin.action(description=_("Mark as training material"))
    def mark_training_material(self, request, queryset):
        if not request.user.has_perm("recordings.play_recording"):
            raise PermissionDenied
        marked = 0
        for recording in queryset:
            try:
                marked += services.mark_training_material(
                    recording, by=request.user, request=request
                )
            except services.NotOpenForTraining as error:
                self.message_user(request, str(error), messages.WARNING)
        if marked:
            self.message_user(
                request,
                ngettext(
                    "%(count)d recording is now open to every operator for training review.",
                    "%(count)d recordings are now open to every operator for training review.",
                    marked,
                )
                % {"count": marked},
                messages.SUCCESS,
            )

    @admin.action(description=_("Remove from training material"))
    def unmark_training_material(self, request, queryset):
        if not request.user.has_perm("recordings.play_recording"):
            raise PermissionDenied
        removed = sum(
            services.unmark_training_material(recording, by=request.user, request=request)
            for recording in queryset
        )
        self.message_user(
            request,
            ngettext(
                "%(count)d recording is no longer training material.",
                "%(count)d recordings are no longer training material.",
                removed,
            )
            % {"count": removed},
            messages.SUCCESS,
        )

    @admin.action(description=_("Place a legal hold…"))
    def place_hold(self, request, queryset):
        return self._with_reason(
            request,
            queryset,
            action="place_hold",
            title=_("Place a legal hold"),
            explanation=_(
                "A held recording is never purged, even after every purpose window has "
                "closed, until the hold is released."
            ),
            apply=lambda recording, reason: services.place_hold(
                recording, reason=reason, by=request.user, request=request
            ),
            done=lambda count: ngettext(
                "Placed a hold on %(count)d recording.",
                "Placed a hold on %(count)d recordings.",
                count,
            ),
        )

    @admin.action(description=_("Release legal holds…"))
    def release_holds(self, request, queryset):
        def release(recording, reason):
            for hold in LegalHold.objects.active().filter(recording=recording):
                services.release_hold(hold, reason=reason, by=request.user, request=request)

        return self._with_reason(
            request,
            queryset.filter(Q(holds__released_at__isnull=True)).distinct(),
            action="release_holds",
            title=_("Release legal holds"),
            explanation=_(
                "Once released, a recording whose purpose windows have all closed is "
                "purged at once: its key and file are destroyed and cannot be recovered."
            ),
            apply=release,
            done=lambda count: ngettext(
                "Released the holds on %(count)d recording.",
                "Released the holds on %(count)d recordings.",
                count,
            ),
        )

    def _with_reason(self, request, queryset, *, action, title, explanation, apply, done):
        """A confirmation page asking for the reason; nothing changes until it is submitted."""
        if not request.user.has_perm("recordings.manage_legal_hold"):
            raise PermissionDenied
        form = ReasonForm(request.POST if "confirm" in request.POST else None)
        if form.is_valid():
            recordings = list(queryset)
            for recording in recordings:
                apply(recording, form.cleaned_data["reason"])
            self.message_user(
                request, done(len(recordings)) % {"count": len(recordings)}, messages.SUCCESS
            )
            return None
        return TemplateResponse(
            request,
            "admin/recordings/recording/reason_confirmation.html",
            {
                **self.admin_site.each_context(request),
                "title": title,
                "explanation": explanation,
                "recordings": queryset,
                "form": form,
                "action": action,
                "opts": self.opts,
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            },
        )


@admin.register(Tombstone)
class TombstoneAdmin(admin.ModelAdmin):
    list_display = ["recording", "reason", "deleted_at", "deleted_by", "deleted_by_system"]
    list_filter = ["reason"]
    search_fields = ["recording__sid", "recording__call__sid"]
    list_select_related = ["recording", "deleted_by"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(OutboxMessage)
class OutboxMessageAdmin(admin.ModelAdmin):
    list_display = ["task", "kwargs", "created_at", "published_at", "attempts", "last_error"]
    list_filter = [("published_at", admin.EmptyFieldListFilter)]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
