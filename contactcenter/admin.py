"""The admin of the core: operators, customers and calls, as the core knows them.

Domain apps add what they own to these pages by subclassing the admin classes here and
registering the subclass in their own ``admin.py`` (the consent ledger adds its history and
the acknowledgement action, the recording pipeline the withdrawal of consent): the core
imports no domain app.

``ConfirmWithReasonMixin`` is the one confirmation step of the admin's actions that change
what cannot be changed back (legal holds, withdrawals of consent, customers' requests).
"""

import functools
import operator

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _

from . import bigtables, listing
from .models import Call, CallEvent, CallPayment, Customer, Operator
from .phones import parse_phone_number
from .roles import NotAllowed

admin.site.site_header = _("Call recording compliance")
admin.site.site_title = _("Call recording compliance")
admin.site.index_title = _("Back office")

OTHER_OPERATORS_PERMISSION = "contactcenter.view_other_operators_data"


NOTHING_TO_CHANGE = _("None of the selected items can be changed this way.")


def as_phone_number(search_term):
    """The search term in E.164 if it is a phone number however typed (090-2222-3333,
    09022223333, +81 90-2222-3333), else None: numbers are searched on the stored E.164
    column, exactly and by its index, never as a substring."""
    try:
        return parse_phone_number(search_term)
    except ValidationError:
        return None


def operators_named(search_term):
    """The primary keys of the operators whose name contains the term (or whose user name it
    is): a small table, read with a substring and listed first, so that the big tables are
    filtered on their indexed operator column, and not at all when no operator is named."""
    term = search_term.strip()
    return list(
        Operator.objects.filter(
            Q(display_name__icontains=term) | Q(user__username__iexact=term)
        ).values_list("pk", flat=True)
    )


# An identifier names one row; a few more are read in case it names several (a call's SID on
# the recordings list: each recording of that call).
SHOWN_FOUND = 100


class IndexedSearchMixin:
    """Search a big table only by what has an index: a phone number however typed (exactly, on
    ``search_number_field``), an identifier (exactly, on ``search_exact_fields``), or an
    operator's name (on the indexed ``search_operator_field``) — never a substring scan."""

    search_number_field = None
    search_exact_fields = ()
    search_operator_field = None

    def exact_search_term(self, term):
        """The term as the identifiers are stored (``RQ-…`` references are upper case)."""
        return term

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        e164 = as_phone_number(term)
        if e164 is not None and self.search_number_field:
            return queryset.filter(**{self.search_number_field: e164}), False
        exact = self.exact_search_term(term)
        # Each identifier on its own index, then the rows found by key: an OR across joined
        # tables (a recording's SID or its call's) would make the planner read every row.
        found = [
            pk
            for field in self.search_exact_fields
            for pk in queryset.filter(**{field: exact}).values_list("pk", flat=True)[:SHOWN_FOUND]
        ]
        conditions = [Q(pk__in=found)] if found else []
        named = operators_named(term) if self.search_operator_field else []
        if named:
            conditions.append(Q(**{f"{self.search_operator_field}__in": named}))
        if not conditions:
            return queryset.none(), False
        return queryset.filter(functools.reduce(operator.or_, conditions)), False


class LargeTableMixin:
    """A list of a table that grows by millions of rows: newest first on ``keyset`` (an
    indexed order), paged by key and counted without ``COUNT(*)`` (``contactcenter/bigtables``),
    opened at a day by ``jump_date_field``. No date hierarchy (it reads every row's date) and
    no sorting by the columns (it would sort the whole table for each page)."""

    keyset = ("pk",)
    jump_date_field = None
    change_list_template = "admin/keyset_change_list.html"
    date_hierarchy = None
    sortable_by = ()
    show_full_result_count = False
    list_per_page = 50

    def get_changelist(self, request, **kwargs):
        return bigtables.KeysetChangeList

    def get_keyset(self, request):
        """The order of this request's list: ``keyset`` unless a filter is better served by
        another index (see the recordings' "due for purge")."""
        return self.keyset


class ReasonForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), widget=forms.Textarea(attrs={"rows": 3}))


SHOWN_NAMES = 10


class ConfirmWithReasonMixin:
    """Confirm, then apply with a reason: the admin's step before a change that matters.

    The action's page shows what will change and asks for the reason (a form of the
    action's own, ``ReasonForm`` by default); nothing changes until it is submitted valid,
    with ``confirm`` in the POST. Each row is then applied through its service; a refusal
    (``NotAllowed``, or one of ``refusals``) is reported for its row and the others go on;
    the action ends with ``message_user``. Who may use the action is declared on it,
    ``@admin.action(permissions=[…])``, so a user without the permission is never offered it.
    """

    def confirm_with_reason(
        self,
        request,
        queryset,
        *,
        title,
        explanation,
        apply,
        done,
        form_class=ReasonForm,
        describe=str,
        refusals=(),
    ):
        """``apply(obj, cleaned_data)`` changes one row; ``done(count)`` says what was done."""
        form = form_class(request.POST if "confirm" in request.POST else None)
        if not form.is_valid():
            actions = request.POST.getlist("action")
            return TemplateResponse(
                request,
                "admin/confirm_with_reason.html",
                {
                    **self.admin_site.each_context(request),
                    "title": title,
                    "explanation": explanation,
                    "rows": [(obj.pk, describe(obj)) for obj in queryset],
                    "form": form,
                    "action": actions[int(request.POST.get("index", 0))] if actions else "",
                    "opts": self.opts,
                    "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
                },
            )
        rows = list(queryset)
        applied = []
        for obj in rows:
            try:
                apply(obj, form.cleaned_data)
            except (NotAllowed, *refusals) as refusal:
                message = getattr(refusal, "message", refusal)
                self.message_user(request, f"{obj}: {message}", messages.ERROR)
            else:
                applied.append(obj)
        if applied:
            # Name what was changed, so that the message can be checked against the list.
            names = ", ".join(str(obj) for obj in applied[:SHOWN_NAMES])
            if len(applied) > SHOWN_NAMES:
                names += ", …"
            self.message_user(request, f"{done(len(applied))} ({names})", messages.SUCCESS)
        elif not rows:
            self.message_user(request, NOTHING_TO_CHANGE, messages.WARNING)
        return None


class StateByTransitionMixin:
    """The change form never writes ``state_field`` with ``save()``: the other fields are saved
    on their own, and a changed state goes through the model's transition, which refuses an
    illegal move. The form carries the state it was opened with, and the move applies only
    from that state, so a state that moved on while the form was open (an operator put on a
    call by Twilio's callback) is never overwritten with the form's older value."""

    state_field = None
    SEEN = "_state_when_opened"

    def get_form(self, request, obj=None, **kwargs):
        if kwargs.get("fields"):  # the admin lists the form's own fields back: not a model field
            kwargs["fields"] = [name for name in kwargs["fields"] if name != self.SEEN]
        form = super().get_form(request, obj, **kwargs)
        if (
            obj is None
            or self.state_field not in form.base_fields
            or not self.has_change_permission(request, obj)
        ):
            return form
        seen = forms.CharField(widget=forms.HiddenInput, required=False)
        return _with_seen_state(form, self.SEEN, seen, getattr(obj, self.state_field))

    def save_model(self, request, obj, form, change):
        if not change:
            return super().save_model(request, obj, form, change)
        others = [name for name in form.changed_data if name not in (self.state_field, self.SEEN)]
        if others:
            auto_now = [
                field.name for field in obj._meta.concrete_fields if getattr(field, "auto_now", 0)
            ]
            obj.save(update_fields=[*others, *auto_now])
        if self.state_field not in form.changed_data:
            return None
        wanted = getattr(obj, self.state_field)
        seen = form.cleaned_data.get(self.SEEN) or None
        moved = self.model.objects.transition(obj.pk, to=wanted, only_from={seen} if seen else None)
        current = self.model.objects.values_list(self.state_field, flat=True).get(pk=obj.pk)
        if not moved and current != wanted:
            self.message_user(
                request,
                _("%(field)s was not changed: it cannot go from %(current)s to %(wanted)s.")
                % {
                    "field": obj._meta.get_field(self.state_field).verbose_name,
                    "current": self._state_label(current),
                    "wanted": self._state_label(wanted),
                },
                messages.WARNING,
            )
        setattr(obj, self.state_field, current)
        return None

    def _state_label(self, value):
        return dict(self.model._meta.get_field(self.state_field).flatchoices).get(value, value)


def _with_seen_state(form_class, name, field, value):
    """``form_class`` with a hidden field holding the state the form was opened with."""
    field.initial = value
    return type(form_class.__name__, (form_class,), {name: field})


class OwnOperatorDataMixin:
    """Operators see only their own rows; roles with the permission see everyone's.

    ``own_rows`` narrows the queryset to the user's own rows. A row outside the queryset
    cannot be opened either: the admin answers as if it did not exist.
    """

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.has_perm(OTHER_OPERATORS_PERMISSION):
            return queryset
        return self.own_rows(queryset, request.user)

    def own_rows(self, queryset, user):
        raise NotImplementedError


@admin.register(Operator)
class OperatorAdmin(StateByTransitionMixin, OwnOperatorDataMixin, admin.ModelAdmin):
    state_field = "availability"
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

    def own_rows(self, queryset, user):
        return queryset.filter(user_id=user.pk)


@admin.register(Customer)
class CustomerAdmin(LargeTableMixin, admin.ModelAdmin):
    list_display = ["__str__", "caller_id_status", "name", "created_at"]
    list_filter = ["caller_id_status"]
    # Searched by get_search_results: the number, or the beginning of the name (山田 finds
    # 山田 花子), on an index of the upper-cased name on PostgreSQL.
    search_fields = ["name"]
    search_help_text = _("A phone number in any format, or the beginning of the name.")
    readonly_fields = ["created_at"]

    def get_search_results(self, request, queryset, search_term):
        """Find a customer by the number however it is typed (03-1234-5678, +81312345678), or
        by the beginning of the name."""
        term = search_term.strip()
        if not term:
            return queryset, False
        e164 = as_phone_number(term)
        if e164 is not None:
            return queryset.filter(phone_number=e164), False
        return queryset.filter(name__istartswith=term), False


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


class CallPaymentInline(CallEventInline):
    """Card payments taken during the call: what Twilio said of each, never a card detail."""

    model = CallPayment
    fields = ["started_at", "amount", "status", "result", "confirmation_code", "started_by"]
    readonly_fields = fields


@admin.register(Call)
class CallAdmin(LargeTableMixin, IndexedSearchMixin, OwnOperatorDataMixin, admin.ModelAdmin):
    """Calls are made by Twilio's webhooks, so the admin shows them and never edits them."""

    search_number_field = "customer__phone_number"
    search_exact_fields = ["sid"]
    search_operator_field = "operator"

    list_display = [
        # Direction is a filter: nearly every call is inbound, and 1280 px has no room for it.
        "started_at",
        "caller",
        "operator",
        "status",
        "recording_state",
        "unanswered",
        "length",
        "short_sid",
    ]
    list_filter = ["missed", "status", "recording_state", "direction", "started_at"]
    # Searched by get_search_results: a number however typed, a call SID or an operator's name.
    search_fields = ["sid"]
    search_help_text = _("A phone number in any format, a call SID, or an operator's name.")
    list_select_related = ["customer", "operator"]
    keyset = ("started_at", "pk")
    jump_date_field = "started_at"
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

    inlines = [CallEventInline, CallPaymentInline]

    def own_rows(self, queryset, user):
        return queryset.handled_by(user)

    @admin.display(description=_("caller"), ordering="from_number")
    def caller(self, call):
        if call.customer_id and call.customer.phone_number:
            return listing.phone(call.customer.phone_number)
        return listing.one_line(call.customer or call.from_number)

    @admin.display(description=_("not answered"), boolean=True, ordering="missed")
    def unanswered(self, call):
        return call.missed

    @admin.display(description=_("duration"))
    def length(self, call):
        return listing.minutes_seconds(call.duration)

    @admin.display(description=_("SID"), ordering="sid")
    def short_sid(self, call):
        return listing.short_sid(call.sid)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
