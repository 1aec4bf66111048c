"""The incidents in the admin: the list (few rows), and each incident's page with its clocks,
scope and counts, and the steps of the workflow (scope, encryption test, drafts, submission,
notification, public notice). The affected recordings are listed by key (``?after=<id>``),
never with OFFSET: an incident may cover millions."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models
from django.http import HttpResponse, HttpResponseBadRequest, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from contactcenter.roles import NotAllowed

from . import clocks, drafts, encryption, notify, services
from .models import AffectedRecording, Incident, IncidentNotification

AFFECTED_PAGE = 100


class SubmitForm(forms.Form):
    submitted_at = forms.DateTimeField(
        label=gettext_lazy("submitted at"),
        help_text=gettext_lazy("When the report reached the PPC (e.g. 2026-12-02 10:30)."),
    )


@admin.register(Incident)
class IncidentAdmin(admin.ModelAdmin):
    list_display = [
        "reference",
        "title",
        "became_known_at",
        "status",
        "scope_kind",
        "preliminary_deadline",
        "final_deadline",
    ]
    list_filter = ["status"]
    search_fields = ["reference", "title"]
    change_form_template = "admin/incidents/incident/change_form.html"
    readonly_fields = [
        "reference",
        "scope_state",
        "scoped_at",
        "scoped_recordings",
        "scoped_calls",
        "scoped_persons",
        "scoped_card_data_recordings",
        "category_financial_counted",
        "category_many_counted",
        "tested_at",
        "protected_recordings",
        "unprotected_recordings",
        "unprotected_persons",
        "preliminary_submitted_at",
        "preliminary_submitted_by",
        "final_submitted_at",
        "final_submitted_by",
        "public_notice_published_at",
    ]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "reference",
                    "title",
                    "description",
                    "occurred_from",
                    "occurred_to",
                    "became_known_at",
                    "cause",
                    "cause_detail",
                    "status",
                ]
            },
        ),
        (
            gettext_lazy("Category under PPC rule 7"),
            {
                "fields": [
                    "category_sensitive",
                    "category_financial",
                    "category_financial_counted",
                    "category_unlawful",
                    "category_many",
                    "category_many_counted",
                    "data_items",
                ]
            },
        ),
        (
            gettext_lazy("Affected scope"),
            {
                "fields": [
                    "scope_kind",
                    "scope_from",
                    "scope_to",
                    "scope_user",
                    "scope_operator",
                    "affected_key_ids",
                ]
            },
        ),
        (
            gettext_lazy("Report items"),
            {"fields": ["secondary_damage", "recurrence_measures", "other_notes"]},
        ),
        (
            gettext_lazy("Public notice"),
            {
                "fields": [
                    "public_notice_text",
                    "public_notice_text_en",
                    "public_notice_published_at",
                ]
            },
        ),
    ]
    raw_id_fields = ["scope_user", "scope_operator"]
    # One labelled input per date and time (the admin's split widget leaves the time unlabelled).
    formfield_overrides = {
        models.DateTimeField: {
            "form_class": forms.DateTimeField,
            "widget": forms.DateTimeInput(
                attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"
            ),
        }
    }

    @admin.display(description=gettext_lazy("preliminary report due"))
    def preliminary_deadline(self, obj):
        return self._deadline(obj, 0)

    @admin.display(description=gettext_lazy("final report due"))
    def final_deadline(self, obj):
        return self._deadline(obj, 1)

    def _deadline(self, obj, index):
        if not clocks.reportability(obj).clocks_run:
            return _("not reportable")
        clock = clocks.clocks(obj)[index]
        due = timezone.localtime(clock.due).strftime("%Y-%m-%d %H:%M")
        if not clock.open:
            return _("submitted")
        if clock.overdue:
            return format_html('<span class="overdue">{} ({})</span>', due, _("overdue"))
        return _("%(due)s (%(days)s days left)") % {"due": due, "days": clock.days_left}

    def has_delete_permission(self, request, obj=None):
        return False  # an incident's record is kept

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        """A form sent back with errors (a date that is not one, an end before its start) is
        answered 400, with the admin's messages on the fields."""
        response = super().changeform_view(request, object_id, form_url, extra_context)
        if request.method == "POST" and isinstance(response, TemplateResponse):
            adminform = (response.context_data or {}).get("adminform")
            if adminform is not None and adminform.form.errors:
                response.status_code = 400
        return response

    def save_model(self, request, obj, form, change):
        try:
            if change:
                services.change_incident(
                    incident=obj, by=request.user, changed_fields=form.changed_data, request=request
                )
            else:
                services.record_incident(incident=obj, by=request.user, request=request)
        except NotAllowed as refusal:
            raise PermissionDenied(refusal.message) from refusal

    def get_urls(self):
        view = self.admin_site.admin_view
        name = "incidents_incident_"
        return [
            path("<int:pk>/scope/", view(self.scope_view), name=name + "scope"),
            path("<int:pk>/test/", view(self.test_view), name=name + "test"),
            path("<int:pk>/affected/", view(self.affected_view), name=name + "affected"),
            path("<int:pk>/draft/<str:report>/", view(self.draft_view), name=name + "draft"),
            path(
                "<int:pk>/draft/<str:report>.txt",
                view(self.draft_text_view),
                name=name + "draft_text",
            ),
            path("<int:pk>/submit/<str:report>/", view(self.submit_view), name=name + "submit"),
            path("<int:pk>/notify/", view(self.notify_view), name=name + "notify"),
            path("<int:pk>/publish/", view(self.publish_view), name=name + "publish"),
            *super().get_urls(),
        ]

    # --- the page --------------------------------------------------------------------------

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context.update(self._workflow(request, obj))
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _workflow(self, request, incident):
        return {
            "can_manage": request.user.has_perm(services.MANAGE),
            "clocks": clocks.clocks(incident),
            "reportability": clocks.reportability(incident),
            "notification_plan": None,
        }

    def _incident(self, request, pk, *, manage=True):
        if manage and not request.user.has_perm(services.MANAGE):
            raise PermissionDenied(_("Only compliance officers manage incidents."))
        if not manage and not request.user.has_perm(services.VIEW):
            raise PermissionDenied
        return get_object_or_404(Incident, pk=pk)

    def _back(self, incident):
        return redirect(reverse("admin:incidents_incident_change", args=[incident.pk]))

    def _context(self, request, incident, title, **extra):
        return {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": incident,
            "title": title,
            **extra,
        }

    # --- scoping and the encryption test ---------------------------------------------------

    def scope_view(self, request, pk):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        incident = self._incident(request, pk)
        try:
            incident, done = services.scope(incident=incident, by=request.user)
        except ValidationError as refusal:
            self.message_user(request, " ".join(refusal.messages), messages.WARNING)
            return self._back(incident)
        if done:
            self.message_user(
                request,
                _("Scoped: %(recordings)s recordings, %(calls)s calls, %(persons)s numbers.")
                % {
                    "recordings": incident.scoped_recordings,
                    "calls": incident.scoped_calls,
                    "persons": incident.scoped_persons,
                },
                messages.SUCCESS,
            )
        else:
            self.message_user(
                request,
                _("Scoping runs in the background; this page shows its progress."),
                messages.INFO,
            )
        return self._back(incident)

    def test_view(self, request, pk):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        incident = self._incident(request, pk)
        try:
            incident, done = services.test_encryption(incident=incident, by=request.user)
        except ValidationError as refusal:
            self.message_user(request, " ".join(refusal.messages), messages.ERROR)
            return self._back(incident)
        if done:
            self.message_user(
                request,
                _("Encryption test: %(protected)s protected, %(unprotected)s not protected.")
                % {
                    "protected": incident.protected_recordings,
                    "unprotected": incident.unprotected_recordings,
                },
                messages.SUCCESS,
            )
        else:
            self.message_user(request, _("The encryption test runs in the background."))
        return self._back(incident)

    def affected_view(self, request, pk):
        incident = self._incident(request, pk, manage=False)
        try:
            after = int(request.GET.get("after", "0"))
        except ValueError:
            return HttpResponseBadRequest(_("The page key must be a whole number."))
        rows = AffectedRecording.objects.filter(incident=incident, pk__gt=after)
        result = request.GET.get("result", "")
        if result:
            if result not in AffectedRecording.Result.values:
                return HttpResponseBadRequest(_("Unknown result."))
            rows = rows.filter(result=result)
        rows = list(
            rows.select_related("recording", "customer").order_by("pk")[: AFFECTED_PAGE + 1]
        )
        more = len(rows) > AFFECTED_PAGE
        rows = rows[:AFFECTED_PAGE]
        for row in rows:
            row.reason_text = encryption.REASONS.get(row.reason, row.reason)
        return TemplateResponse(
            request,
            "admin/incidents/incident/affected.html",
            self._context(
                request,
                incident,
                _("Affected recordings of %(reference)s") % {"reference": incident.reference},
                rows=rows,
                next_after=rows[-1].pk if more else None,
                result=result,
                results=AffectedRecording.Result.choices,
            ),
        )

    # --- the reports -----------------------------------------------------------------------

    def _report(self, report):
        if report not in services.REPORTS:
            from django.http import Http404

            raise Http404(_("Unknown report."))
        return report

    def draft_view(self, request, pk, report):
        incident = self._incident(request, pk, manage=False)
        report_draft = drafts.draft(incident, self._report(report))
        return TemplateResponse(
            request,
            "admin/incidents/incident/draft.html",
            self._context(
                request,
                incident,
                report_draft["title"],
                draft=report_draft,
                can_manage=request.user.has_perm(services.MANAGE),
            ),
        )

    def draft_text_view(self, request, pk, report):
        incident = self._incident(request, pk, manage=False)
        text = drafts.as_text(drafts.draft(incident, self._report(report)))
        response = HttpResponse(text, content_type="text/plain; charset=utf-8")
        response["Content-Disposition"] = (
            f'attachment; filename="{incident.reference}-{report}.txt"'
        )
        return response

    def submit_view(self, request, pk, report):
        incident = self._incident(request, pk)
        self._report(report)
        form = SubmitForm(
            request.POST or None,
            initial={"submitted_at": timezone.localtime().strftime("%Y-%m-%d %H:%M")},
        )
        status = 200
        if request.method == "POST":
            if form.is_valid():
                try:
                    services.mark_submitted(
                        incident=incident,
                        report=report,
                        by=request.user,
                        at=form.cleaned_data["submitted_at"],
                        request=request,
                    )
                except ValidationError as error:
                    form.add_error(None, error)
                else:
                    self.message_user(
                        request, _("The report was marked as submitted."), messages.SUCCESS
                    )
                    return self._back(incident)
            status = 400
        report_draft = drafts.draft(incident, report)
        return TemplateResponse(
            request,
            "admin/incidents/incident/submit.html",
            self._context(request, incident, report_draft["title"], form=form, report=report),
            status=status,
        )

    # --- telling the persons ---------------------------------------------------------------

    def notify_view(self, request, pk):
        incident = self._incident(request, pk)
        if request.method == "POST":
            try:
                services.send_notifications(incident=incident, by=request.user)
            except ValidationError as refusal:
                self.message_user(request, " ".join(refusal.messages), messages.ERROR)
                return self._back(incident)
            self.message_user(
                request,
                _("The notifications are being sent; each is recorded below."),
                messages.SUCCESS,
            )
            return self._back(incident)
        return TemplateResponse(
            request,
            "admin/incidents/incident/notify.html",
            self._context(
                request,
                incident,
                _("Notify the affected persons of %(reference)s")
                % {"reference": incident.reference},
                plan=notify.plan(incident),
                message=notify.message(incident),
            ),
        )

    def publish_view(self, request, pk):
        incident = self._incident(request, pk)
        error = None
        if request.method == "POST":
            try:
                services.publish_notice(incident=incident, by=request.user, request=request)
            except ValidationError as refusal:
                error = " ".join(refusal.messages)
            else:
                self.message_user(request, _("The public notice is published."), messages.SUCCESS)
                return self._back(incident)
        return TemplateResponse(
            request,
            "admin/incidents/incident/publish.html",
            self._context(
                request,
                incident,
                _("Publish the public notice of %(reference)s") % {"reference": incident.reference},
                error=error,
                notice_url=reverse("incidents:notice", args=[incident.reference]),
            ),
            status=400 if error else 200,
        )


@admin.register(IncidentNotification)
class IncidentNotificationAdmin(admin.ModelAdmin):
    """The record of each person told: written by the sending task, never by hand."""

    list_display = ["incident", "phone_number", "channel", "status", "twilio_sid", "sent_at"]
    list_filter = ["channel", "status"]
    list_select_related = ["incident"]
    search_fields = ["=phone_number", "=twilio_sid"]
    readonly_fields = [
        "incident",
        "customer",
        "phone_number",
        "channel",
        "status",
        "twilio_sid",
        "error",
        "sent_at",
        "created_at",
    ]
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
