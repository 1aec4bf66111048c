"""The admin of the third-party provision ledger: the read-only list of records, and the
pages through which a supervisor hands a recording to a third party (form, confirmation,
then the one download of the export).

Registered from ``recordings/admin.py``. The pages hang under the ledger's own admin URLs,
so the recordings page only links to them (``recordings/templatetags/provision.py``).
"""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from contactcenter import listing
from contactcenter.phones import parse_phone_number
from contactcenter.roles import NotAllowed

from . import provision
from .models import ProvisionRecord, Recording

Basis = ProvisionRecord.Basis


class ProvisionForm(forms.Form):
    recipient_name = forms.CharField(label=_("Recipient (name)"), max_length=200)
    recipient_kind = forms.ChoiceField(
        label=_("Kind of recipient"), choices=ProvisionRecord.RecipientKind.choices
    )
    recipient_address = forms.CharField(
        label=_("Recipient's address or contact"),
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("For a company or an office: its address."),
    )
    items = forms.MultipleChoiceField(
        label=_("Items provided"),
        choices=ProvisionRecord.Item.choices,
        widget=forms.CheckboxSelectMultiple,
        initial=[ProvisionRecord.Item.AUDIO, ProvisionRecord.Item.CALL],
    )
    basis = forms.ChoiceField(
        label=_("Basis of the provision"),
        choices=Basis.choices,
        widget=forms.RadioSelect,
        required=False,
        help_text=_(
            "Giving a recording to the client company that entrusted the work is entrustment; "
            "a police inquiry or a court order is a legal ground; anything else needs the "
            "customer's consent to this provision."
        ),
    )
    ground_text = forms.CharField(
        label=_("Legal ground (law or order)"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("For a legal ground: which law or order, with its reference number."),
    )
    consent_method = forms.ChoiceField(
        label=_("How consent was given"),
        choices=[("", "—"), *ProvisionRecord.ConsentMethod.choices],
        required=False,
    )
    consent_obtained_at = forms.DateField(
        label=_("Consent given on"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    consent_statement = forms.CharField(
        label=_("How the consent was confirmed"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Who confirmed it, and where the evidence is kept."),
    )
    in_contract_document = forms.BooleanField(
        label=_("Recorded in a contract with the person"),
        required=False,
        help_text=_(
            "The provision is part of a service to the person and its details are written in "
            "the contract or other documents of that service (rule 19(3)): kept 1 year."
        ),
    )
    note = forms.CharField(
        label=_("Note (not shown to the customer)"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        try:
            provision.clean_provision(
                recipient=data["recipient_name"],
                recipient_kind=data["recipient_kind"],
                recipient_address=data["recipient_address"],
                items=data["items"],
                basis=data["basis"],
                ground_text=data["ground_text"],
                consent_method=data["consent_method"],
                consent_obtained_at=data["consent_obtained_at"],
                consent_statement=data["consent_statement"],
            )
        except ValidationError as error:
            for field, problems in error.message_dict.items():
                for problem in problems:
                    self.add_error(field, problem)
        return data

    def hidden(self):
        """The same form as hidden fields, carried by the confirmation page."""
        for field in self.fields.values():
            multiple = isinstance(field, forms.MultipleChoiceField)
            field.widget = forms.MultipleHiddenInput() if multiple else forms.HiddenInput()
        return self


def describe(data):
    """``(label, value)`` rows of what is about to be recorded, for the confirmation."""
    form = ProvisionForm
    labels = dict(ProvisionRecord.Item.choices)
    rows = [
        (form.base_fields["recipient_name"].label, data["recipient_name"]),
        (
            form.base_fields["recipient_kind"].label,
            ProvisionRecord.RecipientKind(data["recipient_kind"]).label,
        ),
        (form.base_fields["recipient_address"].label, data["recipient_address"]),
        (
            form.base_fields["items"].label,
            "、".join(str(labels[item]) for item in data["items"]),
        ),
        (form.base_fields["basis"].label, Basis(data["basis"]).label),
    ]
    if data["basis"] == Basis.LEGAL_GROUND:
        rows.append((form.base_fields["ground_text"].label, data["ground_text"]))
    if data["basis"] == Basis.CONSENT:
        method = ProvisionRecord.ConsentMethod(data["consent_method"]).label
        rows.append(
            (
                form.base_fields["consent_method"].label,
                f"{method} · {data['consent_obtained_at']} · {data['consent_statement']}",
            )
        )
    if data["note"]:
        rows.append((form.base_fields["note"].label, data["note"]))
    return rows


@admin.register(ProvisionRecord)
class ProvisionRecordAdmin(admin.ModelAdmin):
    """Written by ``recordings.provision.provide`` only: read-only, newest first. The table is
    small (a few hand-overs a month), so its list needs no paging by key."""

    list_display = [
        "provided",
        "number",
        "recipient_name",
        "recipient_kind",
        "basis",
        "items_provided",
        "provided_by",
        "retain_until",
    ]
    list_filter = ["recipient_kind", "basis"]
    search_fields = ["phone_number", "recipient_name"]
    search_help_text = _("A phone number (any notation) or the recipient's name.")
    list_select_related = ["provided_by"]
    ordering = ["-provided_at", "-pk"]
    fields = [
        "provided_at",
        "recipient_name",
        "recipient_kind",
        "recipient_address",
        "customer",
        "phone_number",
        "call",
        "recording",
        "items_provided",
        "basis",
        "ground_text",
        "consent_method",
        "consent_obtained_at",
        "consent_statement",
        "in_contract_document",
        "provided_by",
        "retain_until",
        "exported_at",
        "note",
    ]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_search_results(self, request, queryset, search_term):
        # A number is found in any notation (090-…, +81 90 …), by its E.164 form, on the
        # index; anything else is a recipient's name.
        term = search_term.strip()
        if not term:
            return queryset, False
        try:
            return queryset.filter(phone_number=parse_phone_number(term)), False
        except ValidationError:
            return queryset.filter(recipient_name__icontains=term), False

    @admin.display(description=_("provided at"), ordering="provided_at")
    def provided(self, record):
        return listing.local_datetime(record.provided_at)

    @admin.display(description=_("phone number"))
    def number(self, record):
        return listing.phone(record.phone_number) if record.phone_number else "—"

    @admin.display(description=_("items provided"))
    def items_provided(self, record):
        return "、".join(record.item_labels())

    # --- handing a recording over ------------------------------------------------------------

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path(
                "provide/<int:recording_pk>/",
                view(self.provide_view),
                name="recordings_provisionrecord_provide",
            ),
            path(
                "<int:pk>/export/",
                view(self.export_view),
                name="recordings_provisionrecord_export",
            ),
            *super().get_urls(),
        ]

    def provide_view(self, request, recording_pk):
        """The form, then its confirmation; the record is written only when confirmed, and
        the page of its one download follows."""
        if not provision.may_provide(request.user):
            raise PermissionDenied
        recording = get_object_or_404(
            Recording.objects.select_related("call__customer", "call__operator"), pk=recording_pk
        )
        # 「社外に渡す」 on the evidence package's page opens the form with the package chosen.
        initial = {}
        if request.GET.get("items") == ProvisionRecord.Item.EVIDENCE_PACKAGE:
            initial["items"] = [ProvisionRecord.Item.EVIDENCE_PACKAGE]
        form = ProvisionForm(request.POST if request.method == "POST" else None, initial=initial)
        confirming = False
        if request.method == "POST" and form.is_valid():
            if request.POST.get("confirmed") != "yes":
                confirming = True
            else:
                data = form.cleaned_data
                try:
                    record = provision.provide(
                        recording,
                        by=request.user,
                        recipient=data["recipient_name"],
                        recipient_kind=data["recipient_kind"],
                        recipient_address=data["recipient_address"],
                        items=data["items"],
                        basis=data["basis"],
                        ground_text=data["ground_text"],
                        consent_method=data["consent_method"],
                        consent_obtained_at=data["consent_obtained_at"],
                        consent_statement=data["consent_statement"],
                        in_contract_document=data["in_contract_document"],
                        note=data["note"],
                        http_request=request,
                    )
                except NotAllowed as refusal:
                    self.message_user(request, str(refusal.message), messages.ERROR)
                    return redirect("admin:recordings_recording_change", recording.pk)
                except ValidationError as error:
                    for field, problems in error.message_dict.items():
                        for problem in problems:
                            form.add_error(field if field in form.fields else None, problem)
                else:
                    return redirect("admin:recordings_provisionrecord_export", record.pk)
        refusal = provision.refusal_for(recording)
        return TemplateResponse(
            request,
            "admin/recordings/provisionrecord/provide.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": _("Provide to a third party"),
                "recording": recording,
                "summary": provision.call_summary(recording),
                "refusal": refusal,
                "form": form.hidden() if confirming else form,
                "confirming": confirming,
                "rows": describe(form.cleaned_data) if confirming else [],
            },
        )

    def export_view(self, request, pk):
        """The page of a record's export (GET), and its one download (POST)."""
        record = get_object_or_404(
            ProvisionRecord.objects.select_related("recording", "provided_by"), pk=pk
        )
        if not self.has_view_permission(request, record):
            raise PermissionDenied
        if request.method == "POST":
            try:
                body = provision.open_export(record, by=request.user, http_request=request)
            except provision.ExportRefused as refusal:
                self.message_user(request, str(refusal.message), messages.ERROR)
                return redirect("admin:recordings_provisionrecord_export", record.pk)
            response = StreamingHttpResponse(body, content_type="application/zip")
            response["Content-Disposition"] = (
                f'attachment; filename="{provision.export_filename(record)}"'
            )
            response["X-Content-Type-Options"] = "nosniff"
            return response
        return TemplateResponse(
            request,
            "admin/recordings/provisionrecord/export.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": _("Provision recorded"),
                "record": record,
                "rows": record_rows(record),
                "refusal": provision.export_refusal(record, by=request.user),
                "record_url": reverse("admin:recordings_provisionrecord_change", args=[record.pk]),
                "expires_at": timezone.localtime(record.provided_at + provision.EXPORT_WINDOW),
            },
        )


def record_rows(record):
    """``(label, value)`` rows of a written record, as its export page shows them."""
    field = ProvisionRecord._meta.get_field
    rows = [
        (field("provided_at").verbose_name, listing.local_datetime(record.provided_at)),
        (field("recipient_name").verbose_name, record.recipient_name),
        (field("recipient_kind").verbose_name, record.get_recipient_kind_display()),
        (field("recipient_address").verbose_name, record.recipient_address),
        (field("phone_number").verbose_name, record.phone_number or "—"),
        (field("items").verbose_name, "、".join(record.item_labels())),
        (field("basis").verbose_name, record.get_basis_display()),
    ]
    if record.ground_text:
        rows.append((field("ground_text").verbose_name, record.ground_text))
    rows.append((field("retain_until").verbose_name, listing.local_datetime(record.retain_until)))
    return rows
