"""Training review: recordings offered as training material, an operator's own review of a
recording, and supervisors' feedback."""

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from audit import services as audit
from audit.models import AccessEvent
from contactcenter.roles import NotAllowed, require
from recordings.access import PLAY, REVIEW, training_recordings
from recordings.models import Recording

from .models import Feedback, Score, TrainingReview

Action = AccessEvent.Action
Status = Recording.Status
FEEDBACK = "training.give_feedback"


# --- training material ---------------------------------------------------------------------


class NotOpenForTraining(Exception):
    """The recording has no open training window, so it cannot be offered for training."""


def mark_training_material(recording, *, by, request=None):
    """Offer ``recording`` to every operator for training review (while its window is open).
    Only for who may play any recording (``NotAllowed`` otherwise, nothing changes)."""
    require(by, PLAY, _("Your role does not allow choosing training material."))
    if recording.sealed_at is not None:
        raise NotOpenForTraining(
            _("The use of this recording was stopped at the customer's request.")
        )
    has_open_training = recording.purposes.filter(
        allows_training_review=True, usable_until__gt=timezone.now()
    ).exists()
    if recording.status != Status.STORED or not has_open_training:
        raise NotOpenForTraining(
            _("%(sid)s has no open training period: it cannot be used for training.")
            % {"sid": recording.sid}
        )
    if recording.training_material_at:
        return False
    with transaction.atomic():
        Recording.objects.filter(pk=recording.pk).update(
            training_material_at=timezone.now(), training_material_by=by
        )
        audit.record(Action.TRAINING_MARKED, actor=by, recording=recording, request=request)
    return True


def unmark_training_material(recording, *, by, request=None):
    require(by, PLAY, _("Your role does not allow choosing training material."))
    with transaction.atomic():
        changed = Recording.objects.filter(
            pk=recording.pk, training_material_at__isnull=False
        ).update(training_material_at=None, training_material_by=None)
        if changed:
            audit.record(
                Action.TRAINING_MARKED,
                actor=by,
                recording=recording,
                detail={"marked": False},
                request=request,
            )
    return bool(changed)


# --- reviews and feedback ------------------------------------------------------------------


def may_review(user):
    return user.has_perm(REVIEW)


def may_give_feedback(user):
    return user.has_perm(FEEDBACK)


def check_may_review(user, *, recording=None, request=None):
    """Refuse, with ``NotAllowed`` and an event in the audit trail, a user who may not use
    the training pages, or (with ``recording``) may not review that recording now: its
    training period has ended, or it is neither their call nor training material."""
    if not may_review(user):
        refusal = NotAllowed(_("Your role does not include training review."))
    elif recording is not None and not is_open_for_review(user, recording):
        refusal = NotAllowed(
            _(
                "This recording is not open to you for training review: its training period "
                "has ended, or it is neither your call nor marked as training material."
            ),
            reason="not_open_for_training",
        )
    else:
        return
    audit.record(
        Action.REFUSED,
        recording=recording,
        detail={"reason": refusal.reason, "page": "training"},
        request=request,
    )
    raise refusal


def is_open_for_review(user, recording):
    return training_recordings(user).filter(pk=recording.pk).exists()


def save_review(*, recording, operator, notes, self_evaluation, self_rating, request=None):
    """Write or correct ``operator``'s review of ``recording`` (one per operator), while the
    recording is open to them for training review (``NotAllowed`` otherwise)."""
    if not (may_review(operator.user) and is_open_for_review(operator.user, recording)):
        raise NotAllowed(_("This recording is not open to you for training review."))
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
    """A supervisor's feedback on ``review``, with ``scores``: ``(criterion, score)`` pairs.
    Only for who may give feedback (``NotAllowed`` otherwise, nothing changes)."""
    require(by, FEEDBACK, _("Your role does not allow giving feedback."))
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


def reviews_awaiting_feedback():
    """Operators' reviews no supervisor has answered yet, oldest first.

    An anti-join on ``training_feedback.review_id`` (the foreign key's index); callers slice or
    cap the count, never count the whole table."""
    return (
        TrainingReview.objects.filter(feedback__isnull=True)
        .select_related("operator", "recording__call")
        .order_by("created_at", "pk")
    )
