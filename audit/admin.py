import contextlib
import ipaddress

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpResponseBadRequest, HttpResponseRedirect, StreamingHttpResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html_join
from django.utils.text import Truncator
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy

from contactcenter import listing
from contactcenter.admin import LargeTableMixin, as_phone_number
from contactcenter.phones import format_phone_number

from . import services
from .models import AccessEvent

EXPORT_PERMISSION = "audit.view_accessevent"
# Lookups on the address column whose value the database reads as an address: anything else
# in them fails in PostgreSQL's inet cast when the query runs (a 500, not a refusal).
_IP_ADDRESS_LOOKUPS = {"ip", "ip__exact", "ip__in", "ip__gt", "ip__gte", "ip__lt", "ip__lte"}


# The processes that act when no person does (``actor_label`` of their events).
_PROCESS_NAMES = {
    "purge": _lazy("Automatic purge"),
    "key rotation": _lazy("Key rotation"),
}
_CUSTOMER_PREFIX = "customer "
# The keys the services write into an event's detail, as people read them.
_DETAIL_KEYS = {
    "channel": _lazy("channel"),
    "reason": _lazy("reason"),
    "key_id": _lazy("key"),
    "rewrapped": _lazy("keys rewrapped"),
    "hold": _lazy("hold"),
    "request": _lazy("request"),
    "decision": _lazy("decision"),
    "ground": _lazy("ground"),
    "filters": _lazy("filters"),
    "through_seq": _lazy("up to event"),
    "device": _lazy("device"),
    "recovery_codes": _lazy("recovery codes"),
    "remaining": _lazy("remaining"),
}


def actor_name(label):
    """``customer +819012345678`` → お客様 (090-1234-5678); process names translated."""
    if label.startswith(_CUSTOMER_PREFIX):
        number = label.removeprefix(_CUSTOMER_PREFIX)
        return _("Customer (%(number)s)") % {"number": format_phone_number(number)}
    if label in _PROCESS_NAMES:
        return str(_PROCESS_NAMES[label])
    return label


def _value_text(value):
    if isinstance(value, dict):
        return ", ".join(f"{key}={_value_text(item)}" for key, item in value.items())
    if isinstance(value, list):
        return ", ".join(_value_text(item) for item in value)
    if value is None:
        return "—"
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    return str(value)


def detail_lines(detail):
    """An event's detail as (key, value) pairs to show as ``key: value`` lines."""
    if detail in (None, "", {}, []):
        return []
    if not isinstance(detail, dict):
        return [(_("note"), Truncator(_value_text(detail)).chars(120))]
    return [
        (
            str(_DETAIL_KEYS.get(key, key.replace("_", " "))),
            Truncator(_value_text(value)).chars(120),
        )
        for key, value in detail.items()
    ]


def _bad_ip_filter(request):
    """A 400 naming the value if the query filters the address column on a non-address."""
    for key, values in request.GET.lists():
        if key not in _IP_ADDRESS_LOOKUPS:
            continue
        for value in values:
            for address in value.split(",") if key == "ip__in" else [value]:
                try:
                    ipaddress.ip_address(address.strip())
                except ValueError:
                    return HttpResponseBadRequest(
                        _("%(value)s is not an IP address; filter on an address such as 192.0.2.1.")
                        % {"value": repr(address[:100])},
                        content_type="text/plain; charset=utf-8",
                    )
    return None


@admin.register(AccessEvent)
class AccessEventAdmin(LargeTableMixin, admin.ModelAdmin):
    """The trail, read-only: events are written by the services that act, never by hand."""

    list_display = [
        "seq",
        "when",
        "actor_display",
        "action",
        "recording_display",
        "purpose_display",
        "detail_display",
        "ip",
    ]
    list_display_links = ["seq"]
    list_filter = ["action", ("occurred_at", admin.DateFieldListFilter), "actor"]
    # Searched by get_search_results, each on its index: never a substring of millions of rows.
    search_fields = ["recording_sid"]
    search_help_text = _lazy(
        "A recording SID, a user name, a caller's number in any format, or an IP address."
    )
    # Newest first on the trail's own order (``seq`` is unique, so indexed), paged by it.
    keyset = ("seq",)
    jump_date_field = "occurred_at"
    actions = None
    change_list_template = "admin/audit/accessevent/change_list.html"

    def has_add_permission(self, request):
        return False

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        found = Q(recording_sid=term) | Q(actor_label=term)
        e164 = as_phone_number(term)
        if e164 is not None:
            found |= Q(actor_label=f"customer {e164}")
        with contextlib.suppress(ValueError):  # not an address: not searched as one
            found |= Q(ip=str(ipaddress.ip_address(term)))
        return queryset.filter(found), False

    @admin.display(description=_lazy("occurred at"))
    def when(self, event):
        return listing.local_datetime(event.occurred_at)

    @admin.display(description=_lazy("by"))
    def actor_display(self, event):
        return listing.one_line(actor_name(event.actor_label))

    @admin.display(description=_lazy("recording"))
    def recording_display(self, event):
        return listing.short_sid(event.recording_sid)

    @admin.display(description=_lazy("purpose"))
    def purpose_display(self, event):
        """The purpose's name where an app above annotated it (``privacy``), else its code."""
        return getattr(event, "purpose_name", None) or event.purpose or listing.EMPTY

    @admin.display(description=_lazy("detail"))
    def detail_display(self, event):
        lines = detail_lines(event.detail)
        if not lines:
            return listing.EMPTY
        return format_html_join(
            "",
            '<span class="detail-line"><span class="detail-key">{}</span>: {}</span>',
            lines,
        )

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        return [
            path(
                "export/",
                self.admin_site.admin_view(self.export_view),
                name="audit_accessevent_export",
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        if bad := _bad_ip_filter(request):
            return bad
        query = request.GET.urlencode()
        export_url = reverse("admin:audit_accessevent_export") + (f"?{query}" if query else "")
        return super().changelist_view(request, {**(extra_context or {}), "export_url": export_url})

    def has_export_permission(self, request):
        return request.user.has_perm(EXPORT_PERMISSION)

    def export_view(self, request):
        """The events the changelist shows with the same filters, as a CSV file for Excel."""
        if not self.has_export_permission(request):
            raise PermissionDenied
        if bad := _bad_ip_filter(request):
            return bad
        try:
            events = self.get_changelist_instance(request).get_queryset(request)
        except IncorrectLookupParameters:
            return HttpResponseRedirect(reverse("admin:audit_accessevent_changelist") + "?e=1")
        chunks = services.export_csv(events, request=request, filters=request.GET.urlencode())
        response = StreamingHttpResponse(chunks, content_type="text/csv; charset=utf-8")
        filename = f"access-events-{timezone.localtime():%Y%m%d-%H%M}.csv"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response
