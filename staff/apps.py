from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class StaffConfig(AppConfig):
    """Staff accounts: the second factor (TOTP and recovery codes) and login lockouts, audited."""

    name = "staff"
    verbose_name = _("Staff accounts")

    def ready(self):
        from . import signals  # noqa: F401
