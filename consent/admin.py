from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from .models import ConsentRecord

LEDGER_FIELDS = [
    "recorded_at",
    "customer",
    "operator",
    "call",
    "party_role",
    "decision",
    "method",
    "notice",
    "digits",
    "announcement_text",
    "announcement_sha256",
    "recorded_by",
    "recorded_by_system",
    "source_request",
    "note",
]


class ReadOnlyLedgerMixin:
    """The ledger is append-only: records are added by services, never edited or deleted."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ConsentRecord)
class ConsentRecordAdmin(ReadOnlyLedgerMixin, admin.ModelAdmin):
    list_display = [
        "recorded_at",
        "subject_display",
        "call",
        "party_role",
        "decision",
        "method",
        "notice",
    ]
    list_filter = ["decision", "method", "party_role", "recorded_at"]
    search_fields = ["customer__phone_number", "operator__display_name", "call__sid"]
    list_select_related = ["customer", "operator", "call", "notice"]
    date_hierarchy = "recorded_at"
    show_full_result_count = False
    fields = LEDGER_FIELDS
    readonly_fields = LEDGER_FIELDS

    @admin.display(description=_("subject"))
    def subject_display(self, record):
        return record.subject


class ConsentRecordInline(ReadOnlyLedgerMixin, admin.TabularInline):
    model = ConsentRecord
    extra = 0
    fields = [
        "recorded_at",
        "call",
        "party_role",
        "decision",
        "method",
        "notice",
        "digits",
        "recorded_by",
        "note",
    ]
    readonly_fields = fields
    ordering = ["-recorded_at", "-pk"]
    show_change_link = True
    verbose_name_plural = _("consent history")
