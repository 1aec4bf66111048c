import ipaddress

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseBadRequest, HttpResponseRedirect, StreamingHttpResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from . import services
from .models import AccessEvent

EXPORT_PERMISSION = "audit.view_accessevent"
# Lookups on the address column whose value the database reads as an address: anything else
# in them fails in PostgreSQL's inet cast when the query runs (a 500, not a refusal).
_IP_ADDRESS_LOOKUPS = {"ip", "ip__exact", "ip__in", "ip__gt", "ip__gte", "ip__lt", "ip__lte"}


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
class AccessEventAdmin(admin.ModelAdmin):
    """The trail, read-only: events are written by the services that act, never by hand."""

    list_display = ["occurred_at", "actor_label", "action", "recording_sid", "purpose", "ip"]
    list_filter = ["action", ("occurred_at", admin.DateFieldListFilter), "actor"]
    date_hierarchy = "occurred_at"
    search_fields = ["recording_sid", "actor_label", "ip", "purpose"]
    # The trail grows by millions of rows: no COUNT(*) of the whole table on every page.
    show_full_result_count = False
    list_per_page = 100
    actions = None
    change_list_template = "admin/audit/accessevent/change_list.html"

    def has_add_permission(self, request):
        return False

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
