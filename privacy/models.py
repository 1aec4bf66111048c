"""Use-purpose notices (利用目的の公表): what calls are recorded for, published in advance.

A ``Notice`` is written as a draft, then published as the next version (v1, v2, …). A
published notice never changes again; a correction is a new version. Each version takes
effect at its ``effective_from`` and stays in force until the next version takes effect,
so exactly one notice is in force at any instant after the first one.
"""

import calendar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models, transaction
from django.utils import timezone
from django.utils.translation import get_language, ngettext
from django.utils.translation import gettext_lazy as _


def in_language(english, japanese):
    """Pick the English or Japanese text by the active language, Japanese first."""
    return english if (get_language() or "ja").startswith("en") and english else japanese


# How long a recording may be used for one purpose: at least a day, at most ten years. No
# purpose a contact center announces needs longer, and the bound keeps every date computed
# from it (the call's start + days) well inside what Python and the database can hold.
MIN_RETENTION_DAYS = 1
MAX_RETENTION_DAYS = 3650
RETENTION_DAYS_MESSAGE = _("Enter a number of days from 1 to 3,650 (ten years).")
RETENTION_DAYS_VALIDATORS = [
    MinValueValidator(MIN_RETENTION_DAYS, message=RETENTION_DAYS_MESSAGE),
    MaxValueValidator(MAX_RETENTION_DAYS, message=RETENTION_DAYS_MESSAGE),
]
RETENTION_DAYS_BOUNDED = models.Q(
    retention_days__gte=MIN_RETENTION_DAYS, retention_days__lte=MAX_RETENTION_DAYS
)


class Purpose(models.Model):
    """One reason calls are recorded, with how long a recording may be used for it."""

    code = models.SlugField(_("code"), max_length=40, unique=True)
    name_ja = models.CharField(_("name (Japanese)"), max_length=100)
    name_en = models.CharField(_("name (English)"), max_length=100)
    description_ja = models.TextField(_("description (Japanese)"))
    description_en = models.TextField(_("description (English)"))
    retention_days = models.PositiveIntegerField(
        _("usable for (days)"),
        validators=RETENTION_DAYS_VALIDATORS,
        help_text=_(
            "How many days from the call a recording may be used for this purpose (1 to 3,650)."
        ),
    )
    allows_training_review = models.BooleanField(
        _("operators may review for training"), default=False
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("purpose")
        verbose_name_plural = _("purposes")
        ordering = ["pk"]
        constraints = [
            models.CheckConstraint(
                condition=RETENTION_DAYS_BOUNDED, name="purpose_retention_days_bounded"
            )
        ]

    def __str__(self):
        return self.name

    @property
    def name(self):
        return in_language(self.name_en, self.name_ja)

    @property
    def description(self):
        return in_language(self.description_en, self.description_ja)


class NoticeQuerySet(models.QuerySet):
    def published(self):
        return self.filter(status=Notice.Status.PUBLISHED)

    def in_force(self, at=None):
        """The notice in force at ``at`` (default now), or None before the first one. One query."""
        at = at or timezone.now()
        return self.published().filter(effective_from__lte=at).order_by("-effective_from").first()


class Notice(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        PUBLISHED = "published", _("Published")

    version = models.PositiveIntegerField(
        _("version"),
        unique=True,
        null=True,
        blank=True,
        editable=False,
        help_text=_("Given when the notice is published: 1, 2, 3 …"),
    )
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.DRAFT, editable=False
    )
    title_ja = models.CharField(
        _("title (Japanese)"), max_length=200, default="通話録音と録音データの取り扱いについて"
    )
    title_en = models.CharField(
        _("title (English)"), max_length=200, default="How we record calls and handle recordings"
    )
    body_ja = models.TextField(
        _("body (Japanese)"),
        help_text=_("Plain text; blank lines separate paragraphs. HTML is shown as typed."),
    )
    body_en = models.TextField(_("body (English)"), blank=True)
    provider_statement_ja = models.TextField(
        _("third-party provider statement (Japanese)"),
        default=(
            "通話は、米国 Twilio Inc. の通信サービスを利用して伝送され、録音データは同社の"
            "設備に一時的に保存された後、当社の管理する暗号化された保管場所に移されます。"
        ),
    )
    provider_statement_en = models.TextField(
        _("third-party provider statement (English)"),
        default=(
            "Calls are carried by the communications service of Twilio Inc. (USA). Recordings "
            "are stored on Twilio's systems only until they are moved to our encrypted storage."
        ),
    )
    contact_ja = models.TextField(_("contact (Japanese)"), blank=True)
    contact_en = models.TextField(_("contact (English)"), blank=True)
    announcement_ja = models.TextField(
        _("announcement script (Japanese)"),
        blank=True,
        help_text=_(
            "Read at the start of every call. Left empty, it is written from the purposes."
        ),
    )
    announcement_en = models.TextField(
        _("announcement script (English)"),
        blank=True,
        help_text=_("Read when the caller presses 9. Left empty, it is written from the purposes."),
    )
    purposes = models.ManyToManyField(
        Purpose, through="NoticePurpose", related_name="notices", verbose_name=_("purposes")
    )
    effective_from = models.DateTimeField(_("effective from"), null=True, blank=True)
    published_at = models.DateTimeField(_("published at"), null=True, blank=True, editable=False)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("published by"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    objects = NoticeQuerySet.as_manager()

    class Meta:
        verbose_name = _("notice")
        verbose_name_plural = _("notices")
        ordering = ["-version", "-pk"]
        permissions = [("publish_notice", _("Can publish a notice"))]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(status="draft", version__isnull=True, published_at__isnull=True)
                    | models.Q(
                        status="published",
                        version__isnull=False,
                        published_at__isnull=False,
                        effective_from__isnull=False,
                    )
                ),
                name="notice_published_has_version_and_dates",
            ),
            models.UniqueConstraint(
                fields=["effective_from"],
                condition=models.Q(status="published"),
                name="notice_one_effective_from_per_instant",
            ),
        ]

    def __str__(self):
        if self.version:
            return f"v{self.version}"
        return _("Draft #%(id)s") % {"id": self.pk}

    def save(self, *args, **kwargs):
        # Publication itself is a conditional UPDATE in privacy.services.publish_notice;
        # after it, nothing in the app may write to the row again.
        if self.pk and type(self).objects.filter(pk=self.pk, status=self.Status.PUBLISHED).exists():
            raise ValidationError(
                _("A published notice cannot be changed. Create a new version instead.")
            )
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        # Asked of the locked row, not of this copy: it may have been loaded as a draft.
        with transaction.atomic():
            stored = type(self).objects.select_for_update().filter(pk=self.pk).first()
            if self.is_published or (stored and stored.is_published):
                raise ValidationError(_("A published notice cannot be deleted."))
            return super().delete(*args, **kwargs)

    @property
    def is_published(self):
        return self.status == self.Status.PUBLISHED

    @property
    def title(self):
        return in_language(self.title_en, self.title_ja)

    @property
    def body(self):
        return in_language(self.body_en, self.body_ja)

    @property
    def provider_statement(self):
        return in_language(self.provider_statement_en, self.provider_statement_ja)

    @property
    def contact(self):
        return in_language(self.contact_en, self.contact_ja)

    def announcement(self, language="ja"):
        return self.announcement_en if language.startswith("en") else self.announcement_ja


class NoticePurpose(models.Model):
    """A purpose as a notice announces it.

    The usable days and the training flag are copied from the purpose when the notice is
    published, so that what a caller was told stays true even if the purpose is edited later.
    """

    notice = models.ForeignKey(
        Notice, on_delete=models.CASCADE, related_name="notice_purposes", verbose_name=_("notice")
    )
    purpose = models.ForeignKey(
        Purpose, on_delete=models.PROTECT, related_name="+", verbose_name=_("purpose")
    )
    retention_days = models.PositiveIntegerField(
        _("usable for (days)"), null=True, blank=True, validators=RETENTION_DAYS_VALIDATORS
    )
    allows_training_review = models.BooleanField(
        _("operators may review for training"), null=True, blank=True
    )

    class Meta:
        verbose_name = _("announced purpose")
        verbose_name_plural = _("announced purposes")
        ordering = ["purpose_id"]
        constraints = [
            models.UniqueConstraint(fields=["notice", "purpose"], name="notice_purpose_once"),
            models.CheckConstraint(
                condition=models.Q(retention_days__isnull=True) | RETENTION_DAYS_BOUNDED,
                name="notice_purpose_retention_days_bounded",
            ),
        ]

    def __str__(self):
        return str(self.purpose)

    def save(self, *args, **kwargs):
        with transaction.atomic():
            self._refuse_if_published()
            super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        with transaction.atomic():
            self._refuse_if_published()
            return super().delete(*args, **kwargs)

    def _refuse_if_published(self):
        # The notice's row is locked, as publish_notice locks it: a purpose added while the
        # notice is being published waits, then is refused, so the announcement checked at
        # publication names every purpose the notice ends up with.
        notice = Notice.objects.select_for_update().filter(pk=self.notice_id).first()
        if notice is not None and notice.is_published:
            raise ValidationError(_("The purposes of a published notice cannot be changed."))

    @property
    def days(self):
        """The announced days; for a draft, the purpose's current value."""
        return (
            self.retention_days if self.retention_days is not None else self.purpose.retention_days
        )

    @property
    def retention_display(self):
        """ "1 year", "3 years", "90 days": how people say how long something is kept."""
        days = self.days
        if days % 365 == 0:
            years = days // 365
            return ngettext("%(count)d year", "%(count)d years", years) % {"count": years}
        return ngettext("%(count)d day", "%(count)d days", days) % {"count": days}

    @property
    def training(self):
        if self.allows_training_review is not None:
            return self.allows_training_review
        return self.purpose.allows_training_review


# --- art. 32 public matters: the business that handles the recordings --------------------------


class Organisation(models.Model):
    """The business, as APPI art. 32 asks it be named on the public page; one row only.

    ``privacy.organisation.current()`` reads it. The fees are those art. 38 allows a business
    to charge (the notification of purposes and the disclosures); 0 is a decision too and is
    published as 「無料」. Every other request kind is free by law, so it has no fee field.
    """

    # The single row's key: the check constraint makes a second row impossible.
    singleton = models.PositiveSmallIntegerField(
        _("single row key"), default=1, unique=True, editable=False
    )
    legal_name_ja = models.CharField(_("legal name (Japanese)"), max_length=200, blank=True)
    legal_name_en = models.CharField(_("legal name (English)"), max_length=200, blank=True)
    address_ja = models.CharField(_("address (Japanese)"), max_length=300, blank=True)
    address_en = models.CharField(_("address (English)"), max_length=300, blank=True)
    representative_title_ja = models.CharField(
        _("representative's title"), max_length=100, blank=True, help_text=_("e.g. 代表取締役")
    )
    representative_name_ja = models.CharField(
        _("representative's name"), max_length=100, blank=True
    )
    complaint_department_ja = models.CharField(
        _("complaint contact: department"), max_length=200, blank=True
    )
    complaint_phone = models.CharField(_("complaint contact: phone"), max_length=40, blank=True)
    complaint_email = models.EmailField(_("complaint contact: email"), blank=True)
    complaint_hours_ja = models.CharField(
        _("complaint contact: hours"),
        max_length=200,
        blank=True,
        help_text=_("e.g. 平日 9:00〜17:00"),
    )
    accredited_body_name_ja = models.CharField(
        _("accredited personal information protection organisation"),
        max_length=200,
        blank=True,
        help_text=_("認定個人情報保護団体, if the business is a member; leave empty if none."),
    )
    accredited_body_contact_ja = models.TextField(_("its complaint contact"), blank=True)
    fee_purpose_notice = models.PositiveIntegerField(
        _("fee: notification of purposes (yen)"), default=0
    )
    fee_hear = models.PositiveIntegerField(_("fee: disclosure by listening (yen)"), default=0)
    fee_copy = models.PositiveIntegerField(_("fee: disclosure as a copy (yen)"), default=0)
    fee_provision_records = models.PositiveIntegerField(
        _("fee: disclosure of third-party provision records (yen)"), default=0
    )
    fee_payment_ja = models.TextField(
        _("how a fee is paid"),
        blank=True,
        help_text=_("Shown with the fees when one of them is not free."),
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("updated by"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )

    class Meta:
        verbose_name = _("organisation (art. 32 public matters)")
        verbose_name_plural = _("organisation (art. 32 public matters)")
        constraints = [
            models.CheckConstraint(condition=models.Q(singleton=1), name="organisation_single_row")
        ]

    def __str__(self):
        return self.legal_name_ja or str(_("Organisation"))

    @property
    def legal_name(self):
        return in_language(self.legal_name_en, self.legal_name_ja)

    @property
    def address(self):
        return in_language(self.address_en, self.address_ja)

    @property
    def representative(self):
        return " ".join(
            part for part in (self.representative_title_ja, self.representative_name_ja) if part
        )


# --- art. 28: recipients in a foreign country -------------------------------------------------


class CrossBorderRecipient(models.Model):
    """A third party in a foreign country that recordings or call data are provided to.

    Entrusting calls to Twilio Inc. (United States) is such a provision (APPI art. 28). On the
    basis of equivalent measures the business must check them periodically (rule 18(1)) and
    tell a person about them on request (art. 28(3)): the register keeps both.
    """

    class Basis(models.TextChoices):
        EQUIVALENT_MEASURES = (
            "equivalent_measures",
            _("Equivalent measures (contract, certifications)"),
        )
        CONSENT = "consent", _("The person's consent")
        ADEQUATE_COUNTRY = "adequate_country", _("Country recognised as adequate")

    recipient = models.CharField(_("recipient"), max_length=200, help_text=_("e.g. Twilio Inc."))
    country_ja = models.CharField(_("country"), max_length=100, help_text=_("e.g. 米国"))
    services_ja = models.CharField(
        _("what is handled there"), max_length=300, help_text=_("e.g. 音声通話・録音・SMS")
    )
    basis = models.CharField(
        _("basis"), max_length=32, choices=Basis.choices, default=Basis.EQUIVALENT_MEASURES
    )
    measures_ja = models.TextField(
        _("the measures"),
        help_text=_(
            "What the recipient is bound to and how (the data processing agreement, its "
            "certifications); published on the privacy page."
        ),
    )
    country_regime_ja = models.TextField(
        _("the country's personal information protection system"),
        blank=True,
        help_text=_("外的環境の把握: what the business knows of the law of that country."),
    )
    evidence = models.TextField(
        _("evidence documents"),
        blank=True,
        help_text=_("One per line: the document's name, then its address or where it is filed."),
    )
    last_checked_on = models.DateField(_("last checked on"), null=True, blank=True, editable=False)
    check_interval_months = models.PositiveSmallIntegerField(
        _("check every (months)"),
        default=12,
        validators=[MinValueValidator(1), MaxValueValidator(36)],
    )
    next_check_on = models.DateField(
        _("next check due"), null=True, blank=True, editable=False, db_index=True
    )
    reminded_for = models.DateField(
        _("reminder sent for"),
        null=True,
        blank=True,
        editable=False,
        help_text=_("The due date staff were last reminded of, so they are reminded once."),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("foreign recipient")
        verbose_name_plural = _("foreign recipients (cross-border register)")
        ordering = ["pk"]

    def __str__(self):
        return f"{self.recipient}（{self.country_ja}）"

    def save(self, *args, **kwargs):
        self.next_check_on = self.due_after(self.last_checked_on)
        super().save(*args, **kwargs)

    def due_after(self, checked_on):
        """The day the check after one made on ``checked_on`` is due (None: never checked)."""
        if checked_on is None:
            return None
        month = checked_on.month - 1 + self.check_interval_months
        year, month = checked_on.year + month // 12, month % 12 + 1
        last_day = calendar.monthrange(year, month)[1]
        return checked_on.replace(year=year, month=month, day=min(checked_on.day, last_day))

    def is_overdue(self, today=None):
        today = today or timezone.localdate()
        return self.next_check_on is None or self.next_check_on < today

    def evidence_lines(self):
        return [line.strip() for line in self.evidence.splitlines() if line.strip()]


class CrossBorderCheck(models.Model):
    """One periodic check of a foreign recipient's measures: who, when, what, the outcome."""

    class Result(models.TextChoices):
        CONFIRMED = "confirmed", _("Measures confirmed")
        ISSUES = "issues", _("Issues found, being addressed")
        NOT_MET = "not_met", _("Measures not met")

    recipient = models.ForeignKey(
        CrossBorderRecipient,
        on_delete=models.PROTECT,
        related_name="checks",
        verbose_name=_("foreign recipient"),
    )
    checked_on = models.DateField(_("checked on"))
    checked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("checked by"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    scope = models.TextField(_("what was checked"))
    result = models.CharField(_("result"), max_length=16, choices=Result.choices)
    note = models.TextField(_("note"), blank=True)
    recorded_at = models.DateTimeField(_("recorded at"), auto_now_add=True)

    class Meta:
        verbose_name = _("check of a foreign recipient")
        verbose_name_plural = _("checks of foreign recipients")
        ordering = ["-checked_on", "-pk"]

    def __str__(self):
        return f"{self.recipient} {self.checked_on}"
