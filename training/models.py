"""Training review (研修用レビュー): operators listen to recordings open for training, write notes
and a self-evaluation; supervisors answer with feedback and scores on an editable scorecard."""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from contactcenter.models import Operator
from recordings.models import Recording


class ScorecardCriterion(models.Model):
    """One line of the scorecard supervisors score reviews on; supervisors edit the list."""

    name = models.CharField(_("criterion"), max_length=100)
    description = models.TextField(_("what to look for"), blank=True)
    max_score = models.PositiveSmallIntegerField(
        _("highest score"), default=5, validators=[MinValueValidator(1), MaxValueValidator(10)]
    )
    position = models.PositiveSmallIntegerField(_("position"), default=0)
    active = models.BooleanField(
        _("in use"), default=True, help_text=_("Criteria no longer in use keep their past scores.")
    )

    class Meta:
        verbose_name = _("scorecard criterion")
        verbose_name_plural = _("scorecard criteria")
        ordering = ["position", "pk"]

    def __str__(self):
        return self.name


class TrainingReview(models.Model):
    """An operator's notes and self-evaluation on one recording."""

    class Rating(models.IntegerChoices):
        POOR = 1, _("1 — needs much work")
        FAIR = 2, _("2 — needs work")
        GOOD = 3, _("3 — good")
        VERY_GOOD = 4, _("4 — very good")
        EXCELLENT = 5, _("5 — excellent")

    recording = models.ForeignKey(
        Recording,
        on_delete=models.PROTECT,
        related_name="training_reviews",
        verbose_name=_("recording"),
    )
    operator = models.ForeignKey(
        Operator,
        on_delete=models.PROTECT,
        related_name="training_reviews",
        verbose_name=_("operator"),
    )
    notes = models.TextField(_("notes"), blank=True)
    self_evaluation = models.TextField(_("self-evaluation"), blank=True)
    self_rating = models.PositiveSmallIntegerField(
        _("self-rating"), choices=Rating.choices, null=True, blank=True
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("training review")
        verbose_name_plural = _("training reviews")
        ordering = ["-updated_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["recording", "operator"], name="one_review_per_operator"
            )
        ]
        permissions = [("give_feedback", _("Can give feedback and scores on training reviews"))]

    def __str__(self):
        return f"{self.operator} — {self.recording}"


class Feedback(models.Model):
    """A supervisor's answer to a review, with a score per scorecard criterion."""

    review = models.ForeignKey(
        TrainingReview, on_delete=models.CASCADE, related_name="feedback", verbose_name=_("review")
    )
    supervisor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("supervisor"),
    )
    comment = models.TextField(_("feedback"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("feedback")
        verbose_name_plural = _("feedback")
        ordering = ["created_at"]

    def __str__(self):
        return f"{self.supervisor} → {self.review}"


class Score(models.Model):
    feedback = models.ForeignKey(
        Feedback, on_delete=models.CASCADE, related_name="scores", verbose_name=_("feedback")
    )
    criterion = models.ForeignKey(
        ScorecardCriterion, on_delete=models.PROTECT, related_name="+", verbose_name=_("criterion")
    )
    score = models.PositiveSmallIntegerField(_("score"))

    class Meta:
        verbose_name = _("score")
        verbose_name_plural = _("scores")
        ordering = ["criterion__position", "criterion__pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["feedback", "criterion"], name="one_score_per_criterion"
            )
        ]

    def __str__(self):
        return f"{self.criterion}: {self.score}/{self.criterion.max_score}"
