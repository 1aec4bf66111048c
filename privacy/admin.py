from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import OuterRef, Subquery
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from audit.admin import AccessEventAdmin as AuditAccessEventAdmin
from audit.models import AccessEvent
from contactcenter.roles import NotAllowed

from . import crossborder
from .models import (
    CrossBorderCheck,
    CrossBorderRecipient,
    Notice,
    NoticePurpose,
    Organisation,
    Purpose,
)
from .organisation import update_organisation
from .services import (
    PUBLISH,
    check_announcements,
    diff_notices,
    new_draft_from,
    notice_problems,
    notice_warnings,
    publish_notice,
)
from .views import notice_context


@admin.register(Purpose)
class PurposeAdmin(admin.ModelAdmin):
    list_display = ["code", "name_ja", "name_en", "retention_days", "allows_training_review"]
    search_fields = ["code", "name_ja", "name_en"]
    readonly_fields = ["created_at", "updated_at"]


class NoticePurposeInline(admin.TabularInline):
    model = NoticePurpose
    extra = 0
    min_num = 1
    fields = ["purpose", "retention_days", "allows_training_review"]
    readonly_fields = ["retention_days", "allows_training_review"]
    autocomplete_fields = ["purpose"]
    verbose_name_plural = _("announced purposes (usable days are fixed when published)")


class PublishForm(forms.Form):
    effective_from = forms.DateTimeField(
        label=_("Takes effect at"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text=_("Leave empty to take effect immediately."),
    )
    confirm = forms.BooleanField(
        label=_("I have read the notice and the announcement and want to publish them."),
    )


class CompareForm(forms.Form):
    old = forms.ModelChoiceField(Notice.objects.all(), label=_("From"))
    new = forms.ModelChoiceField(Notice.objects.all(), label=_("To"))


@admin.register(Notice)
class NoticeAdmin(admin.ModelAdmin):
    list_display = ["__str__", "status", "effective_from", "published_at", "published_by"]
    list_filter = ["status"]
    list_select_related = ["published_by"]
    inlines = [NoticePurposeInline]
    change_form_template = "admin/privacy/notice/change_form.html"
    change_list_template = "admin/privacy/notice/change_list.html"
    readonly_fields = ["version", "status", "published_at", "published_by"]
    fieldsets = [
        (None, {"fields": ["version", "status", "effective_from", "published_at", "published_by"]}),
        (_("Notice"), {"fields": ["title_ja", "title_en", "body_ja", "body_en"]}),
        (_("Third-party provider"), {"fields": ["provider_statement_ja", "provider_statement_en"]}),
        (_("Contact"), {"fields": ["contact_ja", "contact_en"]}),
        (
            _("Announcement at the start of a call"),
            {"fields": ["announcement_ja", "announcement_en"]},
        ),
    ]

    def has_change_permission(self, request, obj=None):
        # A published notice is shown read-only; corrections are new versions.
        if obj is not None and obj.is_published:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.is_published:
            return False
        return super().has_delete_permission(request, obj)

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.is_published:
            return [field.name for field in Notice._meta.fields]
        return self.readonly_fields

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        for warning in notice_warnings(form.instance):
            self.message_user(request, warning, messages.WARNING)

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<int:pk>/preview/", view(self.preview_view), name="privacy_notice_preview"),
            path("<int:pk>/publish/", view(self.publish_view), name="privacy_notice_publish"),
            path("<int:pk>/new-draft/", view(self.new_draft_view), name="privacy_notice_new_draft"),
            path("compare/", view(self.compare_view), name="privacy_notice_compare"),
            *super().get_urls(),
        ]

    def has_publish_permission(self, request):
        return request.user.has_perm(PUBLISH)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["can_publish"] = self.has_publish_permission(request)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_notice(self, request, pk):
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        return get_object_or_404(Notice, pk=pk)

    def preview_view(self, request, pk):
        """The public page and the announcement as they will be, before publishing."""
        notice = self.get_notice(request, pk)
        context = (
            notice_context(notice)
            if notice.is_published
            else {
                "notice": notice,
                "purposes": notice.notice_purposes.select_related("purpose"),
            }
        )
        return TemplateResponse(
            request,
            "admin/privacy/notice/preview.html",
            {
                **self.admin_site.each_context(request),
                **context,
                "preview": not notice.is_published,
                "announcements": check_announcements(notice),
                "warnings": notice_warnings(notice),
                "opts": self.opts,
                "original": notice,
                "title": _("Preview of %(notice)s") % {"notice": notice},
            },
        )

    def publish_view(self, request, pk):
        """Publish a draft after a confirmation step that shows what will be published."""
        if not self.has_publish_permission(request):
            raise PermissionDenied
        notice = self.get_notice(request, pk)
        change_url = reverse("admin:privacy_notice_change", args=[notice.pk])
        if notice.is_published:
            self.message_user(
                request, _("%(notice)s is already published.") % {"notice": notice}, messages.INFO
            )
            return redirect(change_url)
        form = PublishForm(request.POST or None, initial={"effective_from": notice.effective_from})
        problems = notice_problems(notice)
        status = 200
        if request.method == "POST":
            if form.is_valid() and not problems:
                try:
                    publish_notice(
                        notice=notice,
                        by=request.user,
                        effective_from=form.cleaned_data["effective_from"],
                    )
                except ValidationError as error:
                    problems = error.messages
                except NotAllowed as refusal:
                    raise PermissionDenied(refusal.message) from refusal
                else:
                    self.message_user(
                        request,
                        _("Published as %(notice)s. It is public at its own address from now on.")
                        % {"notice": notice},
                        messages.SUCCESS,
                    )
                    return redirect(change_url)
            status = 400
        return TemplateResponse(
            request,
            "admin/privacy/notice/publish.html",
            {
                **self.admin_site.each_context(request),
                "form": form,
                "notice": notice,
                "problems": problems,
                "warnings": notice_warnings(notice),
                "announcements": check_announcements(notice),
                "purposes": notice.notice_purposes.select_related("purpose"),
                "next_version": (
                    Notice.objects.published()
                    .order_by("-version")
                    .values_list("version", flat=True)
                    .first()
                    or 0
                )
                + 1,
                "opts": self.opts,
                "original": notice,
                "title": _("Publish %(notice)s") % {"notice": notice},
            },
            status=status,
        )

    def new_draft_view(self, request, pk):
        if request.method != "POST" or not self.has_add_permission(request):
            raise PermissionDenied
        draft = new_draft_from(notice=self.get_notice(request, pk))
        self.message_user(request, _("A new draft was created from the published version."))
        return redirect(reverse("admin:privacy_notice_change", args=[draft.pk]))

    def compare_view(self, request):
        """What changed between two versions (or a draft and the version it corrects)."""
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        form = CompareForm(request.GET or None)
        diffs = None
        if form.is_valid():
            compared = diff_notices(form.cleaned_data["old"], form.cleaned_data["new"])
            diffs = [diff for diff in compared if diff.changed]
        return TemplateResponse(
            request,
            "admin/privacy/notice/compare.html",
            {
                **self.admin_site.each_context(request),
                "form": form,
                "diffs": diffs,
                "opts": self.opts,
                "title": _("Compare notices"),
            },
            status=400 if request.GET and not form.is_valid() else 200,
        )


# --- art. 32 public matters --------------------------------------------------------------------


@admin.register(Organisation)
class OrganisationAdmin(admin.ModelAdmin):
    """The one row of organisation settings: it can be added once and never deleted."""

    list_display = ["__str__", "address_ja", "updated_at", "updated_by"]
    list_select_related = ["updated_by"]
    readonly_fields = ["updated_at", "updated_by"]
    fieldsets = [
        (
            _("The business"),
            {
                "fields": [
                    "legal_name_ja",
                    "legal_name_en",
                    "address_ja",
                    "address_en",
                    "representative_title_ja",
                    "representative_name_ja",
                ]
            },
        ),
        (
            _("Where to send complaints"),
            {
                "fields": [
                    "complaint_department_ja",
                    "complaint_phone",
                    "complaint_email",
                    "complaint_hours_ja",
                    "accredited_body_name_ja",
                    "accredited_body_contact_ja",
                ]
            },
        ),
        (
            _("Fees (APPI art. 38; 0 is published as free)"),
            {
                "fields": [
                    "fee_purpose_notice",
                    "fee_hear",
                    "fee_copy",
                    "fee_provision_records",
                    "fee_payment_ja",
                ],
                "description": _(
                    "The Act allows a fee only for the notification of purposes and for "
                    "disclosure; every other request is free. A fee must stay within what "
                    "the work actually costs."
                ),
            },
        ),
        (None, {"fields": ["updated_at", "updated_by"]}),
    ]

    def has_add_permission(self, request):
        return super().has_add_permission(request) and not Organisation.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        try:
            update_organisation(organisation=obj, by=request.user, changed_fields=form.changed_data)
        except NotAllowed as refusal:
            raise PermissionDenied(refusal.message) from refusal


class CrossBorderCheckInline(admin.TabularInline):
    model = CrossBorderCheck
    extra = 0
    fields = ["checked_on", "checked_by", "scope", "result", "note", "recorded_at"]
    readonly_fields = fields
    can_delete = False
    verbose_name_plural = _("checks (newest first; recorded with “Record a check”)")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class RecordCheckForm(forms.Form):
    checked_on = forms.DateField(
        label=_("Checked on"), widget=forms.DateInput(attrs={"type": "date"})
    )
    scope = forms.CharField(
        label=_("What was checked"),
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("e.g. the data processing agreement in force, the ISO/IEC 27001 certificate."),
    )
    result = forms.ChoiceField(label=_("Result"), choices=CrossBorderCheck.Result.choices)
    note = forms.CharField(
        label=_("Note"), required=False, widget=forms.Textarea(attrs={"rows": 3})
    )


@admin.register(CrossBorderRecipient)
class CrossBorderRecipientAdmin(admin.ModelAdmin):
    list_display = [
        "recipient",
        "country_ja",
        "services_ja",
        "basis",
        "last_checked_on",
        "next_check_on",
        "check_status",
    ]
    list_filter = ["basis"]
    search_fields = ["recipient", "country_ja"]
    readonly_fields = ["last_checked_on", "next_check_on", "reminded_for"]
    inlines = [CrossBorderCheckInline]
    change_form_template = "admin/privacy/crossborderrecipient/change_form.html"
    fieldsets = [
        (None, {"fields": ["recipient", "country_ja", "services_ja", "basis", "measures_ja"]}),
        (_("The foreign country"), {"fields": ["country_regime_ja"]}),
        (
            _("Evidence and periodic checks"),
            {
                "fields": [
                    "evidence",
                    "check_interval_months",
                    "last_checked_on",
                    "next_check_on",
                    "reminded_for",
                ]
            },
        ),
    ]

    @admin.display(description=_("check"))
    def check_status(self, obj):
        today = timezone.localdate()
        if obj.is_overdue(today):
            return _("Overdue") if obj.next_check_on else _("Never checked")
        if obj.next_check_on <= today + timezone.timedelta(days=crossborder.REMIND_DAYS_BEFORE):
            return _("Due within %(days)d days") % {"days": crossborder.REMIND_DAYS_BEFORE}
        return _("Up to date")

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path(
                "<int:pk>/check/",
                view(self.record_check_view),
                name="privacy_crossborderrecipient_check",
            ),
            *super().get_urls(),
        ]

    def has_record_check_permission(self, request):
        return request.user.has_perm(crossborder.RECORD_CHECK)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["can_record_check"] = self.has_record_check_permission(request)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def record_check_view(self, request, pk):
        """Record one periodic check of a recipient's measures (audited)."""
        if not self.has_record_check_permission(request):
            raise PermissionDenied
        recipient = get_object_or_404(CrossBorderRecipient, pk=pk)
        form = RecordCheckForm(request.POST or None, initial={"checked_on": timezone.localdate()})
        status = 200
        if request.method == "POST":
            if form.is_valid():
                try:
                    crossborder.record_check(
                        recipient=recipient, by=request.user, **form.cleaned_data
                    )
                except ValidationError as error:
                    form.add_error(None, error)
                except NotAllowed as refusal:
                    raise PermissionDenied(refusal.message) from refusal
                else:
                    self.message_user(
                        request,
                        _("The check was recorded. The next one is due on %(date)s.")
                        % {"date": recipient.next_check_on},
                        messages.SUCCESS,
                    )
                    return redirect(
                        reverse("admin:privacy_crossborderrecipient_change", args=[recipient.pk])
                    )
            status = 400
        return TemplateResponse(
            request,
            "admin/privacy/crossborderrecipient/check.html",
            {
                **self.admin_site.each_context(request),
                "form": form,
                "opts": self.opts,
                "original": recipient,
                "title": _("Record a check of %(recipient)s") % {"recipient": recipient},
            },
            status=status,
        )


@admin.register(CrossBorderCheck)
class CrossBorderCheckAdmin(admin.ModelAdmin):
    """Checks are recorded from their recipient's page and never changed afterwards."""

    list_display = ["recipient", "checked_on", "checked_by", "result", "recorded_at"]
    list_filter = ["result"]
    list_select_related = ["recipient", "checked_by"]
    readonly_fields = [
        "recipient",
        "checked_on",
        "checked_by",
        "scope",
        "result",
        "note",
        "recorded_at",
    ]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# --- purpose names on the audit trail ----------------------------------------------------------
# The trail keeps a purpose's code (it knows no app above it); this page shows its name in the
# reader's language, read in the same query as the events.

admin.site.unregister(AccessEvent)


@admin.register(AccessEvent)
class AccessEventAdmin(AuditAccessEventAdmin):
    def get_queryset(self, request):
        name = "name_en" if (get_language() or "ja").startswith("en") else "name_ja"
        names = Purpose.objects.filter(code=OuterRef("purpose")).values(name)[:1]
        return super().get_queryset(request).annotate(purpose_name=Subquery(names))
