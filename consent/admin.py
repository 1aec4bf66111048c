from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from contactcenter import admin as core_admin
from contactcenter import listing
from contactcenter.models import Call, Customer, Operator

from .models import ConsentRecord
from .services import acknowledge_recording, has_opted_out, may_record

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
class ConsentRecordAdmin(
    core_admin.LargeTableMixin,
    core_admin.IndexedSearchMixin,
    ReadOnlyLedgerMixin,
    admin.ModelAdmin,
):
    list_display = [
        "recorded_at",
        "subject_display",
        "call_sid",
        "party_role",
        "decision",
        "method",
        "notice",
    ]
    list_display_links = ["recorded_at"]
    list_filter = ["decision", "method", "party_role", "recorded_at"]
    # Searched by get_search_results: a number however typed, a call SID or an operator's name.
    search_fields = ["call__sid"]
    search_help_text = _("A phone number in any format, a call SID, or an operator's name.")
    list_select_related = ["customer", "operator", "call", "notice"]
    keyset = ("recorded_at", "pk")
    jump_date_field = "recorded_at"
    fields = LEDGER_FIELDS
    readonly_fields = LEDGER_FIELDS

    search_number_field = "customer__phone_number"
    search_exact_fields = ["call__sid"]
    search_operator_field = "operator"

    @admin.display(description=_("subject"))
    def subject_display(self, record):
        return listing.one_line(record.subject)

    @admin.display(description=_("call"))
    def call_sid(self, record):
        return listing.short_sid(record.call.sid if record.call_id else "")


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


# --- the consent ledger on the core's pages --------------------------------------------------
# The core's admin knows nothing of consent; these subclasses add the ledger's history and
# the answers it gives to the operator, customer and call pages.


class RecordConsentPermissionMixin:
    """``@admin.action(permissions=["record_consent"])``: only who may add to the ledger."""

    def has_record_consent_permission(self, request):
        return request.user.has_perm("consent.add_consentrecord")


admin.site.unregister(Operator)


@admin.register(Operator)
class OperatorAdmin(RecordConsentPermissionMixin, core_admin.OperatorAdmin):
    actions = ["record_acknowledgement"]
    inlines = [ConsentRecordInline]

    @admin.action(
        description=_("Record that the operators acknowledged recording (signed agreement)"),
        permissions=["change", "record_consent"],
    )
    def record_acknowledgement(self, request, queryset):
        for operator in queryset:
            acknowledge_recording(
                operator=operator, by=request.user, method=ConsentRecord.Method.CONTRACT
            )
        count = queryset.count()
        self.message_user(
            request,
            ngettext(
                "Recorded the acknowledgement of %(count)d operator.",
                "Recorded the acknowledgement of %(count)d operators.",
                count,
            )
            % {"count": count},
            messages.SUCCESS,
        )


admin.site.unregister(Customer)


@admin.register(Customer)
class CustomerAdmin(RecordConsentPermissionMixin, core_admin.CustomerAdmin):
    readonly_fields = [*core_admin.CustomerAdmin.readonly_fields, "recording_consent"]
    inlines = [ConsentRecordInline]

    @admin.display(description=_("recording"))
    def recording_consent(self, customer):
        if has_opted_out(customer):
            return _("Opted out: calls are not recorded")
        return _("Asked at the start of each call")


admin.site.unregister(Call)


@admin.register(Call)
class CallAdmin(core_admin.CallAdmin):
    inlines = [*core_admin.CallAdmin.inlines, ConsentRecordInline]

    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), "recording_permission"]

    @admin.display(description=_("may be recorded"))
    def recording_permission(self, call):
        permission = may_record(call=call)
        if not permission:
            return permission.message
        names = ", ".join(str(announced.purpose) for announced in permission.purposes)
        return _("Yes, under %(notice)s, for: %(purposes)s") % {
            "notice": permission.notice,
            "purposes": names,
        }
