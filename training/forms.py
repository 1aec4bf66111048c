from django import forms
from django.utils.html import escape
from django.utils.translation import gettext_lazy as _

from .models import Feedback, TrainingReview


class ReviewForm(forms.ModelForm):
    class Meta:
        model = TrainingReview
        fields = ["notes", "self_evaluation", "self_rating"]
        widgets = {
            "notes": forms.Textarea(attrs={"rows": 5}),
            "self_evaluation": forms.Textarea(attrs={"rows": 4}),
        }
        help_texts = {
            "notes": _(
                "What happened in the call, what you noticed; only you and supervisors see it."
            ),
            "self_evaluation": _("What went well, and what you would do differently."),
        }


class FeedbackForm(forms.ModelForm):
    """Feedback with one score field per scorecard criterion in use."""

    class Meta:
        model = Feedback
        fields = ["comment"]
        widgets = {"comment": forms.Textarea(attrs={"rows": 4})}

    def __init__(self, *args, criteria, **kwargs):
        super().__init__(*args, **kwargs)
        self.criteria = list(criteria)
        for criterion in self.criteria:
            self.fields[f"score_{criterion.pk}"] = forms.TypedChoiceField(
                label=criterion.name,
                # Django renders help_text unescaped (it may hold markup); a description
                # is written by staff in the admin, so it is escaped here.
                help_text=escape(criterion.description),
                choices=[("", "—")] + [(n, str(n)) for n in range(1, criterion.max_score + 1)],
                coerce=int,
                empty_value=None,
                required=False,
            )

    def scores(self):
        return [
            (criterion, self.cleaned_data[f"score_{criterion.pk}"])
            for criterion in self.criteria
            if self.cleaned_data.get(f"score_{criterion.pk}") is not None
        ]
