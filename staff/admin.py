from django.contrib import admin, messages
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django_otp.plugins.otp_totp.admin import TOTPDeviceAdmin
from django_otp.plugins.otp_totp.models import TOTPDevice

from contactcenter.roles import NotAllowed

from . import services


class StaffTOTPDeviceAdmin(TOTPDeviceAdmin):
    """Supervisors see who has an authenticator and reset another's (the service decides)."""

    actions = ["reset_second_factor"]

    @admin.action(
        permissions=["view"],
        description=gettext_lazy("Reset the second factor (enrol again at next login)"),
    )
    def reset_second_factor(self, request, queryset):
        done = 0
        for user in {device.user for device in queryset.select_related("user")}:
            try:
                services.reset_second_factor(user=user, by=request.user, request=request)
            except NotAllowed as refusal:
                self.message_user(request, refusal.message, messages.ERROR)
                continue
            done += 1
        if done:
            self.message_user(
                request, _("Second factor reset for %(count)d account(s).") % {"count": done}
            )


admin.site.unregister(TOTPDevice)
admin.site.register(TOTPDevice, StaffTOTPDeviceAdmin)
