from django import forms
from django.contrib import admin
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from contactcenter.admin import (
    ConfirmWithReasonMixin,
    IndexedSearchMixin,
    StateByTransitionMixin,
)
from contactcenter.models import Call
from privacy import organisation

from . import decisions, ownership, requests
from .models import CustomerRequest, DecisionNotice, ListeningLink


class ListeningLinkInline(admin.TabularInline):
    model = ListeningLink
    fields = ["recording", "expires_at", "plays", "max_plays", "created_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class DecisionNoticeInline(admin.StackedInline):
    """The written decision, as the customer reads it, with its signed link."""

    model = DecisionNotice
    fields = ["decision", "legal_ground", "reasons", "answer", "recourse", "issued_at", "link"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description=_("link sent to the customer"))
    def link(self, notice):
        url = decisions.notice_url(notice)
        return format_html('<a href="{}">{}</a>', url, url)


class OverdueFilter(admin.SimpleListFilter):
    title = _("answer due")
    parameter_name = "due"

    def lookups(self, request, model_admin):
        return [("overdue", _("Overdue")), ("open", _("Open"))]

    def queryset(self, request, queryset):
        open_ = queryset.filter(status__in=CustomerRequest.OPEN_STATUSES)
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


class ClosingForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason"),
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_(
            "Why the request ends without a decision on its merits (the fee was not paid, "
            "the requester took it back). The customer reads it in the written decision."
        ),
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
        "suit_mark",
        "assigned_to",
        "on_behalf",
    ]
    list_filter = ["status", "kind", OverdueFilter, "on_behalf", "assigned_to"]
    # Searched by get_search_results: a request number (RQ-…) or a number however typed.
    search_fields = ["reference"]
    search_help_text = _("A request number (RQ-…) or a phone number in any format.")
    list_select_related = ["assigned_to"]
    show_full_result_count = False
    inlines = [DecisionNoticeInline, ListeningLinkInline]
    actions = ["approve", "confirm_fee", "refuse", "close"]

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
        "holder_check",
        "correction_target",
        "correction_wrong",
        "correction_right",
        "message",
        "on_behalf",
        "representative",
        "created_at",
        "due_at",
        "fee_yen",
        "fee_confirmed_at",
        "fee_confirmed_by",
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

    @admin.display(description=_("earlier holder of the number"))
    def holder_check(self, obj):
        """The recycled-number guard (portal/ownership.py): a call so old that the number may
        have been someone else's when it was made."""
        if obj.pk and ownership.request_needs_holder_check(obj):
            return format_html('<strong class="overdue">{}</strong>', HOLDER_CHECK)
        return "—"

    def get_readonly_fields(self, request, obj=None):
        if obj and (not obj.is_open or obj.awaits_fee):
            # A closed request is a record; one awaiting its fee moves only when staff
            # confirm the payment (the action), never by editing its status.
            return self.fields
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

    @admin.display(description=_("two weeks (art. 39)"), ordering="created_at")
    def suit_mark(self, obj):
        """The day the person may go to court if the request is still unanswered."""
        text = timezone.localtime(obj.suit_possible_from).strftime("%Y-%m-%d")
        if obj.past_suit_mark:
            return format_html(
                '<strong class="overdue">{} · {}</strong>', text, _("two weeks passed")
            )
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
                "Withdrawal: it is recorded in the consent ledger and the recordings are purged. "
                "Stop using but keep: the recordings are sealed (no use by anyone) and kept. "
                "Purposes, cross-border information, records of provision: the answer is "
                "written from the notice in force, the register and the ledger. Correction: the "
                "name is corrected, or the correction is added to the call's record. Stopping "
                "provision: nothing about the customer is provided to a third party any more. "
                "Every decision writes the decision notice the customer receives."
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

    @admin.action(description=_("Confirm the fee was paid…"), permissions=["decide"])
    def confirm_fee(self, request, queryset):
        return self.confirm_with_reason(
            request,
            queryset.filter(status=CustomerRequest.Status.AWAITING_FEE),
            title=_("Confirm the fee was paid"),
            explanation=_(
                "The requests then proceed as any other: they are received and can be decided."
            ),
            form_class=DecisionForm,
            describe=_describe,
            refusals=(requests.RequestError,),
            apply=lambda obj, data: requests.confirm_fee(
                obj, by=request.user, http_request=request
            ),
            done=lambda count: (
                ngettext(
                    "Confirmed the fee of %(count)d request.",
                    "Confirmed the fee of %(count)d requests.",
                    count,
                )
                % {"count": count}
            ),
        )

    @admin.action(description=_("Close without action…"), permissions=["decide"])
    def close(self, request, queryset):
        return self.confirm_with_reason(
            request,
            queryset.filter(status__in=OPEN),
            title=_("Close the requests without action"),
            explanation=_(
                "For a request that ends without a decision on its merits. The customer "
                "receives the written decision with the reason."
            ),
            form_class=ClosingForm,
            describe=_describe,
            refusals=(requests.RequestError,),
            apply=lambda obj, data: requests.close(
                obj, by=request.user, reason=data["reason"], http_request=request
            ),
            done=lambda count: (
                ngettext("Closed %(count)d request.", "Closed %(count)d requests.", count)
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


OPEN = list(CustomerRequest.OPEN_STATUSES)


HOLDER_CHECK = _(
    "Possibly an earlier holder of the number: a call is older than the portal lists without a "
    "check. Confirm with the person that the call was theirs before acting."
)


def _describe(made):
    """The request as the confirmation page lists it, with what staff must check first."""
    text = f"{made.reference} · {made.get_kind_display()}"
    if made.awaits_fee:
        text += f" · {made.get_status_display()} ({organisation.fee_display(made.fee_yen)})"
    checks = []
    if made.on_behalf:
        checks.append(_("on someone's behalf: check the authority"))
    if ownership.request_needs_holder_check(made):
        checks.append(HOLDER_CHECK)
    if not checks:
        return text
    return format_html(
        "{}{}", text, format_html_join("", " · <strong>{}</strong>", ((c,) for c in checks))
    )


class CallCorrectionInline(admin.TabularInline):
    """Corrections of a call's details granted to the customer (APPI art. 34): the call's
    details stay as Twilio and the system recorded them, and the correction stands beside
    them, on the call's page, for everyone who may read both the call and the requests."""

    model = CustomerRequest.calls.through
    verbose_name = _("correction by the customer")
    verbose_name_plural = _("corrections by the customer (APPI art. 34)")
    fields = ["request_reference", "what_was_wrong", "what_is_right", "decided_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .filter(
                customerrequest__kind=CustomerRequest.Kind.CORRECT,
                customerrequest__correction_target=CustomerRequest.CorrectionTarget.CALL,
                customerrequest__status=CustomerRequest.Status.DONE,
            )
            .select_related("customerrequest")
        )

    @admin.display(description=_("request"))
    def request_reference(self, row):
        return row.customerrequest.reference

    @admin.display(description=_("what is wrong (as the requester says)"))
    def what_was_wrong(self, row):
        return row.customerrequest.correction_wrong or "—"

    @admin.display(description=_("what is right (as the requester says)"))
    def what_is_right(self, row):
        return row.customerrequest.correction_right

    @admin.display(description=_("closed at"))
    def decided_at(self, row):
        return row.customerrequest.closed_at


# The call's page as the apps below made it, with the corrections granted on it.
_LowerCallAdmin = type(admin.site._registry[Call])
admin.site.unregister(Call)


@admin.register(Call)
class CallAdmin(_LowerCallAdmin):
    inlines = [*_LowerCallAdmin.inlines, CallCorrectionInline]
