from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RecordingsConfig(AppConfig):
    name = "recordings"
    verbose_name = _("Recordings")

    def ready(self):
        # Register the pipeline's tasks in every process (web too, which publishes them
        # from the outbox), not only in workers that autodiscover them.
        from consent.signals import consent_taken_back

        from . import tasks  # noqa: F401
        from .services import forget_without_consent

        def follow_withdrawal(sender, *, customer, operator, call, **kwargs):
            forget_without_consent(customer=customer, operator=operator, call=call)

        consent_taken_back.connect(follow_withdrawal, weak=False, dispatch_uid="recordings")
