"""The staff header's figures: how many reviews await a supervisor's feedback."""

from django import template

from training.services import may_give_feedback, reviews_awaiting_feedback

register = template.Library()

# Counted up to this many (one indexed query, never a full COUNT over the reviews).
CAP = 100


@register.simple_tag(takes_context=True)
def awaiting_feedback_count(context):
    """The number of reviews awaiting feedback, capped at ``CAP``; None for users who may not
    give feedback (the header then shows no link)."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not may_give_feedback(user):
        return None
    return reviews_awaiting_feedback().values("pk")[:CAP].count()
