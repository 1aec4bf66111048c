"""The admin of the core: operators, customers and calls, as the core knows them.

Domain apps add what they own to these pages by subclassing the admin classes here and
registering the subclass in their own ``admin.py`` (the consent ledger adds its history and
the acknowledgement action, the recording pipeline the withdrawal of consent): the core
imports no domain app.
"""

from django.contrib import admin
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from .models import Call, CallEvent, Customer, Operator
from .phones import format_phone_number, parse_phone_number

admin.site.site_header = _("Call recording compliance")
admin.site.site_title = _("Call recording compliance")
admin.site.index_title = _("Back office")

OTHER_OPERATORS_PERMISSION = "contactcenter.view_other_operators_data"


class OwnOperatorDataMixin:
    """Operators see only their own rows; roles with the permission see everyone's.

    ``operator_user_path`` is the lookup from the model to the operator's user. A row
    outside the queryset cannot be opened either: the admin answers as if it did not exist.
    """

    operator_user_path = "operator__user"

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.has_perm(OTHER_OPERATORS_PERMISSION):
            return queryset
        return queryset.filter(**{self.operator_user_path: request.user})


@admin.register(Operator)
class OperatorAdmin(OwnOperatorDataMixin, admin.ModelAdmin):
    operator_user_path = "user"
    list_display = [
        "display_name",
        "user",
        "routing_address",
        "availability",
        "recording_acknowledged_at",
    ]
    list_filter = ["availability"]
    search_fields = ["display_name", "user__username", "routing_address"]
    list_select_related = ["user"]
    readonly_fields = ["recording_acknowledged_at", "created_at", "updated_at"]
    raw_id_fields = ["user"]


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["__str__", "caller_id_status", "name", "created_at"]
    list_filter = ["caller_id_status"]
    search_fields = ["phone_number", "name"]
    readonly_fields = ["created_at"]
    show_full_result_count = False

    def get_search_results(self, request, queryset, search_term):
        """Find a customer by the number however it is typed: 03-1234-5678 or +81312345678."""
        try:
            e164 = parse_phone_number(search_term)
        except ValidationError:
            return super().get_search_results(request, queryset, search_term)
        return queryset.filter(phone_number=e164), False


class CallEventInline(admin.TabularInline):
    """The call's timeline: who paused, resumed or stopped the recording, and when."""

    model = CallEvent
    extra = 0
    fields = ["at", "kind", "actor", "detail"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        return True  # shown with the call, to whoever may see the call


@admin.register(Call)
class CallAdmin(OwnOperatorDataMixin, admin.ModelAdmin):
    """Calls are made by Twilio's webhooks, so the admin shows them and never edits them."""

    list_display = [
        "started_at",
        "direction",
        "caller",
        "operator",
        "status",
        "recording_state",
        "missed",
        "duration",
        "sid",
    ]
    list_filter = ["missed", "status", "recording_state", "direction", "started_at"]
    search_fields = ["sid", "from_number", "to_number", "customer__phone_number"]
    list_select_related = ["customer", "operator"]
    date_hierarchy = "started_at"
    show_full_result_count = False
    readonly_fields = [
        "sid",
        "direction",
        "from_number",
        "to_number",
        "customer",
        "operator",
        "status",
        "started_at",
        "answered_at",
        "ended_at",
        "duration",
        "recording_state",
        "language",
        "missed",
        "last_sequence_number",
        "created_at",
        "updated_at",
    ]

    inlines = [CallEventInline]

    @admin.display(description=_("caller"), ordering="from_number")
    def caller(self, call):
        if call.customer_id and call.customer.phone_number:
            return format_phone_number(call.customer.phone_number)
        return call.customer or call.from_number

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
