"""The Django project package and the core app (operators, customers, calls, Twilio voice)."""

# Load the Celery app with Django so that @shared_task binds to it everywhere.
from .celery import app as celery_app

__all__ = ("celery_app",)
