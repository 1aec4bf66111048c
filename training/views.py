"""Training review pages (研修用レビュー) for operators, with feedback from supervisors."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Q
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _

from contactcenter.roles import NotAllowed
from recordings.access import training_recordings
from recordings.models import Recording

from . import services
from .forms import FeedbackForm, ReviewForm
from .models import ScorecardCriterion, TrainingReview

LOGIN = "admin:login"
PAGE_SIZE = 20


def _refused(request, refusal):
    return render(
        request, "training/refused.html", {"message": refusal.message}, status=refusal.status
    )


@login_required(login_url=LOGIN)
def review_list(request):
    """The recordings the user may review for training now, newest call first."""
    try:
        services.check_may_review(request.user, request=request)
    except NotAllowed as refusal:
        return _refused(request, refusal)
    recordings = (
        training_recordings(request.user)
        .select_related("call__operator", "call__customer")
        .order_by("-call__started_at", "-pk")
    )
    query = request.GET.get("q", "").strip()
    if query:
        recordings = recordings.filter(
            Q(call__operator__display_name__icontains=query) | Q(sid__icontains=query)
        )
    page = Paginator(recordings, PAGE_SIZE).get_page(request.GET.get("page"))
    operator = getattr(request.user, "operator", None)
    reviewed = set(
        TrainingReview.objects.filter(
            operator=operator, recording__in=[r.pk for r in page]
        ).values_list("recording_id", flat=True)
        if operator
        else ()
    )
    own_calls = {recording.pk for recording in page if recording.call.is_handled_by(request.user)}
    return render(
        request,
        "training/list.html",
        {
            "page": page,
            "query": query,
            "reviewed": reviewed,
            "own_calls": own_calls,
            "operator": operator,
        },
    )


@login_required(login_url=LOGIN)
def review_detail(request, pk):
    recording = get_object_or_404(
        Recording.objects.select_related("call__operator", "call__customer"), pk=pk
    )
    try:
        services.check_may_review(request.user, recording=recording, request=request)
    except NotAllowed as refusal:
        return _refused(request, refusal)
    operator = getattr(request.user, "operator", None)
    own = TrainingReview.objects.filter(recording=recording, operator=operator).first()
    may_give_feedback = services.may_give_feedback(request.user)
    criteria = ScorecardCriterion.objects.filter(active=True)
    review_form = ReviewForm(instance=own) if operator else None
    feedback_forms = {}

    if request.method == "POST" and "save_review" in request.POST and operator:
        review_form = ReviewForm(request.POST, instance=own)
        if review_form.is_valid():
            try:
                services.save_review(
                    recording=recording,
                    operator=operator,
                    request=request,
                    **review_form.cleaned_data,
                )
            except NotAllowed as refusal:
                messages.error(request, refusal.message)
            else:
                messages.success(request, _("Your review was saved."))
                return redirect("training:review", pk=pk)
    elif request.method == "POST" and "give_feedback" in request.POST:
        review = get_object_or_404(
            TrainingReview, pk=request.POST.get("review"), recording=recording
        )
        form = FeedbackForm(request.POST, criteria=criteria, prefix=f"r{review.pk}")
        if form.is_valid():
            try:
                services.give_feedback(
                    review=review,
                    by=request.user,
                    comment=form.cleaned_data["comment"],
                    scores=form.scores(),
                    request=request,
                )
            except NotAllowed as refusal:
                messages.error(request, refusal.message)
            else:
                messages.success(request, _("Your feedback was saved."))
                return redirect("training:review", pk=pk)
        feedback_forms[review.pk] = form
    elif request.method == "POST":
        messages.error(request, _("Nothing was saved: your role does not allow that change."))

    reviews = TrainingReview.objects.filter(recording=recording).select_related("operator")
    if not may_give_feedback:
        reviews = reviews.filter(operator=operator) if operator else reviews.none()
    reviews = list(reviews.prefetch_related("feedback__scores__criterion", "feedback__supervisor"))
    if may_give_feedback:
        for review in reviews:
            review.feedback_form = feedback_forms.get(review.pk) or FeedbackForm(
                criteria=criteria, prefix=f"r{review.pk}"
            )
    return render(
        request,
        "training/review.html",
        {
            "recording": recording,
            "review_form": review_form,
            "reviews": reviews,
            "may_give_feedback": may_give_feedback,
            "own_call": recording.call.is_handled_by(request.user),
        },
    )


@login_required(login_url=LOGIN)
def awaiting_feedback(request):
    """The reviews no supervisor has answered yet, oldest first (the first 100)."""
    if not services.may_give_feedback(request.user):
        return _refused(
            request, NotAllowed(_("Only supervisors can give feedback on training reviews."))
        )
    reviews = list(services.reviews_awaiting_feedback()[:100])
    return render(request, "training/awaiting_feedback.html", {"reviews": reviews})
