from django import forms
from django.contrib import admin
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from contactcenter.admin import (
    ConfirmWithReasonMixin,
    IndexedSearchMixin,
    StateByTransitionMixin,
)

from . import requests
from .models import CustomerRequest, ListeningLink


class ListeningLinkInline(admin.TabularInline):
    model = ListeningLink
    fields = ["recording", "expires_at", "plays", "max_plays", "created_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class OverdueFilter(admin.SimpleListFilter):
    title = _("answer due")
    parameter_name = "due"

    def lookups(self, request, model_admin):
        return [("overdue", _("Overdue")), ("open", _("Open"))]

    def queryset(self, request, queryset):
        open_ = queryset.filter(status__in=[CustomerRequest.Status.RECEIVED, "in_review"])
        if self.value() == "overdue":
            return open_.filter(due_at__lt=timezone.now())
        if self.value() == "open":
            return open_
        return queryset


class DecisionForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason"),
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        help_text=_("What was checked (identity, authority) and what was decided."),
    )


class RefusalForm(forms.Form):
    # No default: the ground is chosen for each refusal (an empty first choice, required).
    ground = forms.ChoiceField(
        label=_("Ground for refusal"),
        choices=[("", _("— choose the ground —")), *CustomerRequest.RefusalGround.choices],
    )
    reason = forms.CharField(
        label=_("Reason"),
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("The customer is told the ground; keep the details here."),
    )


@admin.register(CustomerRequest)
class CustomerRequestAdmin(
    IndexedSearchMixin, StateByTransitionMixin, ConfirmWithReasonMixin, admin.ModelAdmin
):
    state_field = "status"
    """The queue of customers' requests: oldest due first, overdue ones in red."""

    list_display = [
        "reference",
        "kind",
        "status",
        "received",
        "due",
        "assigned_to",
        "on_behalf",
    ]
    list_filter = ["status", "kind", OverdueFilter, "on_behalf", "assigned_to"]
    # Searched by get_search_results: a request number (RQ-…) or a number however typed.
    search_fields = ["reference"]
    search_help_text = _("A request number (RQ-…) or a phone number in any format.")
    list_select_related = ["assigned_to"]
    show_full_result_count = False
    inlines = [ListeningLinkInline]
    actions = ["approve", "refuse"]

    search_number_field = "phone_number"
    search_exact_fields = ["reference"]

    def exact_search_term(self, term):
        return term.upper()

    fields = [
        "reference",
        "kind",
        "copy_format",
        "status",
        "phone_number",
        "answer_by",
        "customer",
        "calls",
        "message",
        "on_behalf",
        "representative",
        "created_at",
        "due_at",
        "assigned_to",
        "staff_notes",
        "decision_reason",
        "refusal_ground",
        "decided_by",
        "closed_at",
    ]
    readonly_fields = [
        field for field in fields if field not in ("assigned_to", "staff_notes", "status")
    ]

    def get_readonly_fields(self, request, obj=None):
        if obj and not obj.is_open:
            return self.fields  # a closed request is a record
        return self.readonly_fields

    def formfield_for_choice_field(self, db_field, request, **kwargs):
        if db_field.name == "status":  # only between the open states by hand
            kwargs["choices"] = [
                (CustomerRequest.Status.RECEIVED, CustomerRequest.Status.RECEIVED.label),
                (CustomerRequest.Status.IN_REVIEW, CustomerRequest.Status.IN_REVIEW.label),
            ]
        return super().formfield_for_choice_field(db_field, request, **kwargs)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("received"), ordering="created_at")
    def received(self, obj):
        days = (timezone.now() - obj.created_at).days
        return _("%(date)s (%(days)d days ago)") % {
            "date": timezone.localtime(obj.created_at).strftime("%Y-%m-%d"),
            "days": days,
        }

    @admin.display(description=_("answer due"), ordering="due_at")
    def due(self, obj):
        text = timezone.localtime(obj.due_at).strftime("%Y-%m-%d")
        if obj.is_overdue:
            return format_html('<strong class="overdue">{} · {}</strong>', text, _("overdue"))
        return text

    def has_decide_permission(self, request):
        return request.user.has_perm(requests.DECIDE)

    @admin.action(description=_("Grant and fulfil…"), permissions=["decide"])
    def approve(self, request, queryset):
        return self.confirm_with_reason(
            request,
            queryset.filter(status__in=OPEN),
            title=_("Grant and fulfil the requests"),
            explanation=_(
                "Hear and copy: a listening link per recording is sent by SMS to the proven "
                "mobile; a number proven by a voice call is called instead, told the decision "
                "in Japanese and played the recordings; a file copy for that number is "
                "downloaded from the caller's 'your calls' page once the number is proven again. "
                "Delete and stop using: the recordings "
                "are purged now (a legal hold keeps one, and the customer is told). "
                "Withdrawal: it is recorded in the consent ledger and the recordings are purged."
            ),
            form_class=DecisionForm,
            describe=_describe,
            refusals=(requests.RequestError,),
            apply=lambda obj, data: requests.approve(
                obj, by=request.user, reason=data["reason"], http_request=request
            ),
            done=lambda count: (
                ngettext(
                    "Granted and fulfilled %(count)d request.",
                    "Granted and fulfilled %(count)d requests.",
                    count,
                )
                % {"count": count}
            ),
        )

    @admin.action(description=_("Refuse…"), permissions=["decide"])
    def refuse(self, request, queryset):
        return self.confirm_with_reason(
            request,
            queryset.filter(status__in=OPEN),
            title=_("Refuse the requests"),
            explanation=_(
                "Only on a ground the law allows. The customer is told by SMS, or by a phone "
                "call in Japanese when the number was proven by a voice call."
            ),
            form_class=RefusalForm,
            describe=_describe,
            refusals=(requests.RequestError,),
            apply=lambda obj, data: requests.refuse(
                obj,
                by=request.user,
                ground=data["ground"],
                reason=data["reason"],
                http_request=request,
            ),
            done=lambda count: (
                ngettext(
                    "Refused %(count)d request; the customer is told by SMS or by phone.",
                    "Refused %(count)d requests; the customers are told by SMS or by phone.",
                    count,
                )
                % {"count": count}
            ),
        )


OPEN = [CustomerRequest.Status.RECEIVED, CustomerRequest.Status.IN_REVIEW]


def _describe(made):
    text = f"{made.reference} · {made.get_kind_display()}"
    if made.on_behalf:
        return format_html(
            "{} · <strong>{}</strong>", text, _("on someone's behalf: check the authority")
        )
    return text
