"""Training review: an operator's own review of a recording, and supervisors' feedback."""

from django.db import transaction

from audit import services as audit
from audit.models import AccessEvent

from .models import Feedback, Score, TrainingReview


def save_review(*, recording, operator, notes, self_evaluation, self_rating, request=None):
    """Write or correct ``operator``'s review of ``recording`` (one per operator)."""
    with transaction.atomic():
        review, created = TrainingReview.objects.update_or_create(
            recording=recording,
            operator=operator,
            defaults={
                "notes": notes,
                "self_evaluation": self_evaluation,
                "self_rating": self_rating,
            },
        )
        audit.record(
            AccessEvent.Action.TRAINING_REVIEW,
            actor=operator.user,
            recording=recording,
            purpose="training",
            detail={"review": review.pk, "written": "review" if created else "correction"},
            request=request,
        )
    return review


def give_feedback(*, review, by, comment, scores, request=None):
    """A supervisor's feedback on ``review``, with ``scores``: ``(criterion, score)`` pairs."""
    with transaction.atomic():
        feedback = Feedback.objects.create(review=review, supervisor=by, comment=comment)
        Score.objects.bulk_create(
            Score(feedback=feedback, criterion=criterion, score=score)
            for criterion, score in scores
        )
        audit.record(
            AccessEvent.Action.TRAINING_REVIEW,
            actor=by,
            recording=review.recording,
            purpose="training",
            detail={"review": review.pk, "written": "feedback"},
            request=request,
        )
    return feedback
