"""Use-purpose notices (利用目的の公表): what calls are recorded for, published in advance.

A ``Notice`` is written as a draft, then published as the next version (v1, v2, …). A
published notice never changes again; a correction is a new version. Each version takes
effect at its ``effective_from`` and stays in force until the next version takes effect,
so exactly one notice is in force at any instant after the first one.
"""

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
