import logging

from django.apps import AppConfig
from django.conf import settings
from django.utils.translation import gettext_lazy as _

logger = logging.getLogger("contactcenter")


class ContactCenterConfig(AppConfig):
    name = "contactcenter"
    verbose_name = _("Contact center")

    def ready(self):
        if settings.CELERY_TASK_ALWAYS_EAGER:
            logger.warning(
                "REDIS_URL is not set: Celery tasks run in-process, synchronously. "
                "Set REDIS_URL and start a worker for production."
            )
