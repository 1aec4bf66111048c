from django import forms
from django.contrib import admin, messages
from django.db.models import Exists, OuterRef, Subquery
from django.utils import formats, timezone
from django.utils.html import format_html
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from consent.admin import CallAdmin as ConsentCallAdmin
from consent.admin import CustomerAdmin as ConsentCustomerAdmin
from contactcenter import admin as core_admin
from contactcenter import listing
from contactcenter.admin import ConfirmWithReasonMixin
from contactcenter.models import Call, Customer
from contactcenter.phones import format_phone_number

from . import ingest, retention, twilio_encryption
from .evidence_admin import EvidencePackageMixin  # the evidence package's page and download
from .models import (
    LegalHold,
    OutboxMessage,
    ReconciliationRun,
    Recording,
    RecordingPurpose,
    Tombstone,
)


class RecordingPurposeInline(admin.TabularInline):
    model = RecordingPurpose
    fields = ["purpose", "notice", "usable_until", "allows_training_review"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class LegalHoldInline(admin.TabularInline):
    model = LegalHold
    fields = ["reason", "placed_by", "placed_at", "released_by", "released_at", "release_reason"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class OnHoldFilter(admin.SimpleListFilter):
    title = _("legal hold")
    parameter_name = "held"

    def lookups(self, request, model_admin):
        return [("yes", _("On hold")), ("no", _("Not on hold"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.on_hold()
        if self.value() == "no":
            return queryset.not_on_hold()
        return queryset


class DueForPurgeFilter(admin.SimpleListFilter):
    title = _("due for purge")
    parameter_name = "due"

    def lookups(self, request, model_admin):
        return [("yes", _("Due now")), ("week", _("Within 7 days"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.due_for_purge()
        if self.value() == "week":
            return queryset.due_for_purge(timezone.now() + timezone.timedelta(days=7))
        return queryset


class CardDataFilter(admin.SimpleListFilter):
    """Recordings of calls marked 「カード情報を含む可能性」 (a partial index keeps them few)."""

    title = _("may contain card data")
    parameter_name = "card_data"

    def lookups(self, request, model_admin):
        return [("yes", _("May contain card data"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(call__card_data_suspected_at__isnull=False)
        return queryset


class ErrorFilter(admin.SimpleListFilter):
    """Recordings on which the pipeline wrote an error; "fetch stopped" stays on the status
    index (only recordings still to be fetched), "any" reads every row."""

    title = _("pipeline error")
    parameter_name = "error"

    def lookups(self, request, model_admin):
        return [("fetch", _("Fetch stopped with an error")), ("any", _("Any error"))]

    def queryset(self, request, queryset):
        if self.value() == "fetch":
            queryset = queryset.filter(
                status__in=[Recording.Status.COMPLETED, Recording.Status.FETCH_FAILED]
            )
        if self.value() in ("fetch", "any"):
            return queryset.exclude(last_error="")
        return queryset


class HoldReasonForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason"),
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("For example: dispute with case number, or the end of that dispute."),
    )


@admin.register(Recording)
class RecordingAdmin(
    EvidencePackageMixin,  # the evidence package (recordings/evidence_admin.py)
    core_admin.LargeTableMixin,
    core_admin.IndexedSearchMixin,
    ConfirmWithReasonMixin,
    admin.ModelAdmin,
):
    # What a supervisor looks for, in 1280 px: the pipeline's details are on the change page.
    list_display = [
        "call_date",
        "caller",
        "operator",
        "length",
        "status",
        "held",
        "short_sid",
    ]
    list_display_links = ["call_date"]
    # Newest first on the primary key (indexed; it follows the creation order), paged by key:
    # ordering by a joined or unindexed column would sort millions of rows for every page.
    keyset = ("pk",)

    def get_keyset(self, request):
        # Due for purge: the oldest recordings, which the primary key would reach only after
        # reading every newer one; listed by their retention date instead, on its index.
        if request.GET.get(DueForPurgeFilter.parameter_name):
            return ("retain_until", "pk")
        return self.keyset

    list_filter = [
        "status",
        "purposes__purpose",
        OnHoldFilter,
        DueForPurgeFilter,
        ErrorFilter,
        CardDataFilter,
        ("training_material_at", admin.EmptyFieldListFilter),
    ]
    search_fields = ["sid", "call__sid", "call__from_number"]
    list_select_related = ["call", "call__customer", "call__operator"]
    inlines = [RecordingPurposeInline, LegalHoldInline]
    actions = [
        "retry_fetch",
        "place_hold",
        "release_holds",
        "mark_card_data",
    ]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "error_note",
                    "sid",
                    "call",
                    "status",
                    "fetch_attempts",
                    "fetch_started_at",
                    "partial_blob_name",
                ]
            },
        ),
        (
            _("At Twilio"),
            {
                "classes": ["collapse"],
                "fields": [
                    "duration",
                    "channels",
                    "source",
                    "started_at",
                    "media_url",
                    "twilio_error",
                    "twilio_deleted_at",
                ],
            },
        ),
        (
            _("Encrypted copy"),
            {
                "classes": ["collapse"],
                "fields": [
                    "blob_name",
                    "key_id",
                    "plaintext_size",
                    "ciphertext_size",
                    "plaintext_sha256",
                    "ciphertext_sha256",
                    "stored_at",
                ],
            },
        ),
        (
            _("Retention"),
            {
                "fields": [
                    "retain_until",
                    "card_data",
                    "consent_withdrawn_at",
                    "tombstone_summary",
                ]
            },
        ),
        (_("Training"), {"fields": ["training_material_at", "training_material_by"]}),
    ]

    def get_readonly_fields(self, request, obj=None):
        # The pipeline owns every field; people act through the actions.
        return [field for fieldset in self.fieldsets for field in fieldset[1]["fields"]]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # Every field is read-only (people act through the actions): no 保存 to offer. The
        # page opens with what people read it for: the call, the purposes and the player.
        recording = self.get_object(request, object_id)
        extra_context = {
            **(extra_context or {}),
            "show_save": False,
            "show_save_and_continue": False,
            "show_save_and_add_another": False,
            "summary": _summary(recording) if recording else [],
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def get_queryset(self, request):
        return super().get_queryset(request).with_hold()

    search_number_field = "call__customer__phone_number"
    search_exact_fields = ["sid", "call__sid"]
    search_operator_field = "call__operator"

    @admin.display(description=_("call date"))
    def call_date(self, recording):
        return listing.local_datetime(recording.call.started_at)

    @admin.display(description=_("caller"))
    def caller(self, recording):
        call = recording.call
        if call.from_number.startswith("+"):
            return listing.phone(call.from_number)
        return listing.one_line(call.customer or call.from_number)

    @admin.display(description=_("operator"))
    def operator(self, recording):
        return listing.one_line(recording.call.operator)

    @admin.display(description=_("duration"))
    def length(self, recording):
        return listing.minutes_seconds(recording.duration)

    @admin.display(description=_("SID"))
    def short_sid(self, recording):
        return listing.short_sid(recording.sid)

    @admin.display(description=_("error"))
    def error(self, recording):
        return Truncator(recording.last_error).chars(80)

    @admin.display(description=_("Twilio error code"))
    def twilio_error(self, recording):
        """Twilio's error code on the recording's callback, with what it means when known."""
        if not recording.twilio_error_code:
            return "—"
        meaning = twilio_encryption.TWILIO_ERRORS.get(recording.twilio_error_code)
        if meaning is None:
            return recording.twilio_error_code
        return format_html("{}: {}", recording.twilio_error_code, meaning)

    @admin.display(description=_("pipeline error"))
    def error_note(self, recording):
        """The last error at the top of the page, as the admin shows a form's errors."""
        if not recording.last_error:
            return "—"
        return format_html(
            '<p class="errornote">{}<br>{}</p>',
            _("The pipeline stopped on this recording with this error:"),
            recording.last_error,
        )

    @admin.display(description=_("may contain card data"))
    def card_data(self, recording):
        call = recording.call
        if call.card_data_suspected_at is None:
            return "—"
        marked = formats.date_format(
            timezone.localtime(call.card_data_suspected_at), "DATETIME_FORMAT"
        )
        return f"{marked} · {call.card_data_note}" if call.card_data_note else marked

    @admin.display(description=_("on hold"), boolean=True)
    def held(self, recording):
        return recording.has_active_hold

    @admin.display(description=_("tombstone"))
    def tombstone_summary(self, recording):
        tombstone = Tombstone.objects.filter(recording=recording).first()
        if tombstone is None:
            return "—"
        by = tombstone.deleted_by or tombstone.deleted_by_system
        deleted_at = timezone.localtime(tombstone.deleted_at)
        return f"{tombstone.get_reason_display()} · {deleted_at:%Y-%m-%d %H:%M} · {by}"

    def has_manage_legal_hold_permission(self, request):
        return request.user.has_perm(retention.MANAGE_HOLDS)

    @admin.action(description=_("Fetch again from Twilio"), permissions=["change"])
    def retry_fetch(self, request, queryset):
        queued = sum(ingest.retry_fetch(recording, by=request.user) for recording in queryset)
        skipped = queryset.count() - queued
        self.message_user(
            request,
            _("Queued %(queued)d fetch(es); %(skipped)d skipped (only 取得失敗 can be retried).")
            % {"queued": queued, "skipped": skipped},
            messages.SUCCESS if queued else messages.WARNING,
        )

    @admin.action(description=_("Place a legal hold…"), permissions=["manage_legal_hold"])
    def place_hold(self, request, queryset):
        return self.confirm_with_reason(
            request,
            queryset,
            title=_("Place a legal hold"),
            explanation=_(
                "A held recording is never purged, even after every purpose window has "
                "closed, until the hold is released."
            ),
            form_class=HoldReasonForm,
            describe=_describe,
            refusals=(ValueError,),
            apply=lambda recording, data: retention.place_hold(
                recording, reason=data["reason"], by=request.user, request=request
            ),
            done=lambda count: (
                ngettext(
                    "Placed a hold on %(count)d recording.",
                    "Placed a hold on %(count)d recordings.",
                    count,
                )
                % {"count": count}
            ),
        )

    @admin.action(description=_("May contain card data…"), permissions=["change"])
    def mark_card_data(self, request, queryset):
        return self.confirm_with_reason(
            request,
            queryset,
            title=_("May contain card data"),
            explanation=_(
                "A card number may have been spoken while these calls were recorded. Each "
                "recording is then kept only as long as its shortest purpose allows, and a "
                "leak of it counts as a leak of data that can cause financial loss (APPI "
                "rule 7 (2))."
            ),
            describe=_describe,
            apply=lambda recording, data: retention.mark_card_data(
                recording, by=request.user, note=data["reason"]
            ),
            done=lambda count: (
                ngettext(
                    "Marked %(count)d recording as possibly holding card data.",
                    "Marked %(count)d recordings as possibly holding card data.",
                    count,
                )
                % {"count": count}
            ),
        )

    @admin.action(description=_("Release legal holds…"), permissions=["manage_legal_hold"])
    def release_holds(self, request, queryset):
        def release(recording, data):
            for hold in LegalHold.objects.active().filter(recording=recording):
                retention.release_hold(
                    hold, reason=data["reason"], by=request.user, request=request
                )

        return self.confirm_with_reason(
            request,
            queryset.on_hold(),
            title=_("Release legal holds"),
            explanation=_(
                "Once released, a recording whose purpose windows have all closed is "
                "purged at once: its key and file are destroyed and cannot be recovered."
            ),
            form_class=HoldReasonForm,
            describe=_describe,
            refusals=(ValueError,),
            apply=release,
            done=lambda count: (
                ngettext(
                    "Released the holds on %(count)d recording.",
                    "Released the holds on %(count)d recordings.",
                    count,
                )
                % {"count": count}
            ),
        )


def _local(moment, format_name="DATETIME_FORMAT"):
    if moment is None:
        return "—"
    return formats.date_format(timezone.localtime(moment), format_name)


def _summary(recording):
    """``(label, value)`` rows at the top of the recording page, every date in local time."""
    call = recording.call
    seconds = recording.duration if recording.duration is not None else call.duration
    caller = format_phone_number(call.customer.phone_number) if call.customer_id else ""
    windows = [
        f"{window.purpose}: {_local(window.usable_until, 'DATE_FORMAT')}"
        for window in recording.purposes.select_related("purpose")
    ]
    return [
        (_("call date"), _local(call.started_at)),
        (_("caller"), caller or call.from_number or "—"),
        (_("operator"), str(call.operator) if call.operator_id else "—"),
        (_("duration"), f"{seconds // 60}:{seconds % 60:02d}" if seconds is not None else "—"),
        (_("status"), recording.get_status_display()),
        (_("purposes and their windows"), ", ".join(windows) or "—"),
    ]


def _describe(recording):
    return f"{recording} ({recording.call})"


@admin.register(Tombstone)
class TombstoneAdmin(admin.ModelAdmin):
    list_display = ["recording", "reason", "deleted_at", "deleted_by", "deleted_by_system"]
    list_filter = ["reason"]
    search_fields = ["recording__sid", "recording__call__sid"]
    list_select_related = ["recording", "deleted_by"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(OutboxMessage)
class OutboxMessageAdmin(admin.ModelAdmin):
    list_display = ["task", "kwargs", "created_at", "published_at", "attempts", "last_error"]
    list_filter = [("published_at", admin.EmptyFieldListFilter)]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ReconciliationRun)
class ReconciliationRunAdmin(admin.ModelAdmin):
    """Made by the reconciliation job only: read-only, newest first."""

    list_display = [
        "started_at",
        "status",
        "since",
        "recordings_seen",
        "created",
        "queued",
        "deleted_at_twilio",
        "calls_closed",
        "errors",
        "finished_at",
    ]
    list_filter = ["status"]
    ordering = ["-started_at", "-pk"]
    date_hierarchy = "started_at"
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class WithdrawalForm(forms.Form):
    note = forms.CharField(
        label=_("How the request was received"),
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("For example: by phone to the customer desk on 24 Nov, confirmed by callback."),
    )


admin.site.unregister(Customer)


@admin.register(Customer)
class CustomerAdmin(ConfirmWithReasonMixin, ConsentCustomerAdmin):
    """The customer page with the withdrawal of consent, which the pipeline follows at once."""

    actions = ["record_withdrawal"]

    @admin.action(
        description=_("Record withdrawal of consent to recording…"), permissions=["record_consent"]
    )
    def record_withdrawal(self, request, queryset):
        """Confirmation page first; the withdrawal is written only when it is submitted."""
        return self.confirm_with_reason(
            request,
            queryset,
            title=_("Record withdrawal of consent"),
            explanation=_(
                "The following customers withdraw their consent to recording. From now on "
                "their calls are not recorded (they are told so at the start of the call), "
                "and their existing recordings may no longer be used. This is added to the "
                "consent ledger and cannot be undone there; a later consent would be a new "
                "record."
            ),
            form_class=WithdrawalForm,
            apply=lambda customer, data: retention.withdraw_consent(
                customer=customer, by=request.user, note=data["note"]
            ),
            done=lambda count: (
                ngettext(
                    "Recorded the withdrawal of %(count)d customer. Their calls will not be "
                    "recorded and their recordings are no longer usable.",
                    "Recorded the withdrawal of %(count)d customers. Their calls will not be "
                    "recorded and their recordings are no longer usable.",
                    count,
                )
                % {"count": count}
            ),
        )


# --- the recordings on the call pages -------------------------------------------------------
# The core's call list knows only the recording control during the call (requested, paused,
# stopped…); what became of the audio is the pipeline's. This subclass of the consent
# ledger's call page (itself a subclass of the core's) shows it from the Recording rows.

RECORDING_STATUS_LABELS = dict(Recording.Status.choices)


def _latest_recording_status():
    return Subquery(
        Recording.objects.filter(call=OuterRef("pk"))
        .order_by("-created_at", "-pk")
        .values("status")[:1]
    )


class RecordingStatusFilter(admin.SimpleListFilter):
    """Calls by what became of their recording, read on the recordings' (call, …) index."""

    title = _("recording status")
    parameter_name = "recording"
    NONE = "none"

    def lookups(self, request, model_admin):
        return [*Recording.Status.choices, (self.NONE, _("No recording"))]

    def queryset(self, request, queryset):
        value = self.value()
        if value == self.NONE:
            return queryset.filter(~Exists(Recording.objects.filter(call=OuterRef("pk"))))
        if value in Recording.Status.values:
            return queryset.filter(
                Exists(Recording.objects.filter(call=OuterRef("pk"), status=value))
            )
        return queryset


admin.site.unregister(Call)


@admin.register(Call)
class CallAdmin(ConsentCallAdmin):
    """The calls list and page with the recording's status: stored, waiting to be fetched,
    取得失敗, purged… or no recording. One subquery in the list's query, whatever its length."""

    list_display = [
        "recording_status" if name == "recording_state" else name
        for name in ConsentCallAdmin.list_display
    ]
    list_filter = [
        RecordingStatusFilter if name == "recording_state" else name
        for name in ConsentCallAdmin.list_filter
    ]
    # The control state during the call ("not recorded" once Twilio's leg has ended) is not
    # what people read the page for: the recording's status is shown in its place.
    exclude = ["recording_state"]

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        return queryset.annotate(latest_recording_status=_latest_recording_status())

    def get_readonly_fields(self, request, obj=None):
        fields = super().get_readonly_fields(request, obj)
        return ["recording_status" if name == "recording_state" else name for name in fields]

    @admin.display(description=_("recording status"), ordering="latest_recording_status")
    def recording_status(self, call):
        status = getattr(call, "latest_recording_status", None)
        if status is None and not hasattr(call, "latest_recording_status"):
            latest = call.recordings.order_by("-created_at", "-pk").first()
            status = latest.status if latest else None
        if status is None:
            return _("No recording")
        return RECORDING_STATUS_LABELS.get(status, status)


# --- the third-party provision ledger (its own module: recordings/provision_admin.py) -------

from . import provision_admin  # noqa: E402, F401  (registers ProvisionRecordAdmin)
