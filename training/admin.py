from django.contrib import admin

from .models import Feedback, Score, ScorecardCriterion, TrainingReview


@admin.register(ScorecardCriterion)
class ScorecardCriterionAdmin(admin.ModelAdmin):
    list_display = ["name", "max_score", "position", "active"]
    list_editable = ["position", "active"]
    list_filter = ["active"]
    search_fields = ["name", "description"]


class ScoreInline(admin.TabularInline):
    model = Score
    extra = 0
    readonly_fields = ["criterion", "score"]
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


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
