from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from recordings import admin as recordings_admin
from recordings.access import PLAY
from recordings.models import Recording

from . import services
from .models import Feedback, ScorecardCriterion, TrainingReview


@admin.register(ScorecardCriterion)
class ScorecardCriterionAdmin(admin.ModelAdmin):
    list_display = ["name", "max_score", "position", "active"]
    list_editable = ["position", "active"]
    list_filter = ["active"]
    search_fields = ["name", "description"]


class FeedbackInline(admin.StackedInline):
    model = Feedback
    extra = 0
    readonly_fields = ["supervisor", "comment", "created_at"]
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(TrainingReview)
class TrainingReviewAdmin(admin.ModelAdmin):
    """Reviews are written on the training pages; the admin lists them for supervisors."""

    list_display = ["recording", "operator", "self_rating", "updated_at"]
    list_filter = ["self_rating", "operator"]
    search_fields = ["recording__sid", "operator__display_name"]
    list_select_related = ["recording", "operator"]
    readonly_fields = ["recording", "operator", "notes", "self_evaluation", "self_rating"]
    inlines = [FeedbackInline]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


admin.site.unregister(Recording)


@admin.register(Recording)
class RecordingAdmin(recordings_admin.RecordingAdmin):
    """The recordings list with the actions that offer a recording for training."""

    actions = [
        *recordings_admin.RecordingAdmin.actions,
        "mark_training_material",
        "unmark_training_material",
    ]

    def has_play_permission(self, request):
        return request.user.has_perm(PLAY)

    @admin.action(description=_("Mark as training material"), permissions=["play"])
    def mark_training_material(self, request, queryset):
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

    @admin.action(description=_("Remove from training material"), permissions=["play"])
    def unmark_training_material(self, request, queryset):
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
