"""The Celery application.

Configuration lives in Django settings under the ``CELERY_`` prefix: the broker comes from
``REDIS_URL``; without it tasks run in-process (``task_always_eager``). Start a worker with
``celery -A contactcenter worker`` and the scheduler with ``celery -A contactcenter beat``.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "contactcenter.settings")

app = Celery("contactcenter")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
