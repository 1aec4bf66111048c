from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from contactcenter.phones import parse_phone_number

from .models import PhoneVerification


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
        max_length=6,
        min_length=6,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "pattern": "[0-9]{6}"}
        ),
    )
