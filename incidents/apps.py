from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class IncidentsConfig(AppConfig):
    name = "incidents"
    verbose_name = _("Personal-data breaches")

    def ready(self):
        # The outbox publishes tasks by name: they must be registered in the web process too.
        from . import tasks  # noqa: F401
