from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from contactcenter.phones import parse_phone_number

from .models import CustomerRequest, PhoneVerification
from .services import CODE_DIGITS, normalise_code


class NumberForm(forms.Form):
    phone_number = forms.CharField(
        label=_("The phone number you called from"),
        max_length=30,
        widget=forms.TextInput(
            attrs={"autocomplete": "tel", "inputmode": "tel", "placeholder": "090-1234-5678"}
        ),
        help_text=_("We send a 6-digit code to this number to confirm that it is yours."),
    )
    channel = forms.ChoiceField(
        label=_("Receive the code by"),
        choices=PhoneVerification.Channel.choices,
        initial=PhoneVerification.Channel.SMS,
        widget=forms.RadioSelect,
        help_text=_("On a landline, choose a voice call: we call you and read the code."),
    )

    def clean_phone_number(self):
        try:
            return parse_phone_number(self.cleaned_data["phone_number"])
        except ValidationError as error:
            raise ValidationError(error.messages) from None


class CodeForm(forms.Form):
    code = forms.CharField(
        label=_("The 6-digit code"),
        max_length=12,  # "１２３ ４５６" is six digits once normalised
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "maxlength": "12"}
        ),
    )

    def clean_code(self):
        code = normalise_code(self.cleaned_data["code"])
        if not (code.isascii() and code.isdigit() and len(code) == CODE_DIGITS):
            raise ValidationError(_("Enter the 6 digits of the code."))
        return code


class CallLookupForm(forms.Form):
    """When the caller called: the day and the approximate time (portal/ownership.py)."""

    day = forms.DateField(
        label=_("Day of the call"), widget=forms.DateInput(attrs={"type": "date"})
    )
    time = forms.TimeField(
        label=_("Approximate time"), widget=forms.TimeInput(attrs={"type": "time"})
    )

    def clean_day(self):
        day = self.cleaned_data["day"]
        if day > timezone.localdate():
            raise forms.ValidationError(_("That day has not come yet."))
        return day


class RequestForm(forms.Form):
    calls = forms.MultipleChoiceField(
        label=_("Which calls"), required=False, widget=forms.CheckboxSelectMultiple
    )
    kind = forms.ChoiceField(
        label=_("What would you like?"),
        choices=CustomerRequest.Kind.choices,
        widget=forms.RadioSelect,
    )
    copy_format = forms.ChoiceField(
        label=_("For a copy: in which form?"),
        choices=CustomerRequest.CopyFormat.choices,
        widget=forms.RadioSelect,
        required=False,
    )
    correction_target = forms.ChoiceField(
        label=_("For a correction: what is wrong?"),
        choices=CustomerRequest.CorrectionTarget.choices,
        widget=forms.RadioSelect,
        required=False,
    )
    correction_wrong = forms.CharField(
        label=_("For a correction: what we have now"),
        required=False,
        max_length=500,
    )
    correction_right = forms.CharField(
        label=_("For a correction: what is right"),
        required=False,
        max_length=500,
        help_text=_("The recording itself is not changed: it is what was said."),
    )
    message = forms.CharField(
        label=_("Anything we should know (optional)"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    on_behalf = forms.BooleanField(
        label=_("I am asking on someone else's behalf"),
        required=False,
        help_text=_("We will contact you to check your authority before we act."),
    )
    representative = forms.CharField(
        label=_("Your name and relationship to the caller"), required=False, max_length=200
    )

    def __init__(self, *args, calls, **kwargs):
        super().__init__(*args, **kwargs)
        # Only calls with a stored recording: there is nothing to hear, copy, delete or stop
        # using in a call that was never recorded (``requests.submit`` checks it again).
        self.fields["calls"].choices = [
            (str(call.pk), timezone.localtime(call.started_at).strftime("%Y-%m-%d %H:%M"))
            for call in calls
            if any(recording.status == "stored" for recording in call.recordings.all())
        ]

    def clean(self):
        data = super().clean()
        kind = data.get("kind")
        if kind in CustomerRequest.ABOUT_CALLS and not data.get("calls"):
            self.add_error("calls", _("Choose the call or calls your request is about."))
        if kind == CustomerRequest.Kind.CORRECT:
            if not data.get("correction_target"):
                self.add_error("correction_target", _("Choose what should be corrected."))
            if not data.get("correction_right", "").strip():
                self.add_error("correction_right", _("Tell us what is right."))
            elif data.get("correction_target") == "call" and not data.get("calls"):
                self.add_error("calls", _("Choose the call whose details should be corrected."))
        if kind == CustomerRequest.Kind.COPY and not data.get("copy_format"):
            self.add_error("copy_format", _("Choose the form of the copy."))
        if data.get("on_behalf") and not data.get("representative", "").strip():
            self.add_error("representative", _("Tell us who you are and how you are related."))
        return data

    def correction(self):
        """The correction's fields as ``requests.submit`` takes them."""
        return {
            name: self.cleaned_data.get(name, "")
            for name in ("correction_target", "correction_wrong", "correction_right")
        }
