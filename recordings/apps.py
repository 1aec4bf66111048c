from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RecordingsConfig(AppConfig):
    name = "recordings"
    verbose_name = _("Recordings")

    def ready(self):
        # Register the pipeline's tasks in every process (web too, which publishes them
        # from the outbox), not only in workers that autodiscover them.
        from . import tasks  # noqa: F401
