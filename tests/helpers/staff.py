"""Staff accounts: operators who acknowledged recording, and the role groups."""

from datetime import timedelta

from django.utils import timezone

from contactcenter.roles import OPERATOR

from ..factories import OperatorFactory, UserFactory


def acknowledged_operator(username):
    """An operator who acknowledged a month ago that their calls are recorded."""
    from consent.services import acknowledge_recording

    operator = OperatorFactory(user=UserFactory(username=username, roles=[OPERATOR]))
    acknowledge_recording(operator=operator, by=None, at=timezone.now() - timedelta(days=30))
    operator.refresh_from_db()
    return operator


def restore_roles():
    """Put back the role groups the data migrations created.

    Tests that need committed data (a live server, a worker) empty every table afterwards,
    including the groups; this re-runs the project's own ``*_roles`` migrations.
    """
    import importlib
    import pkgutil

    from django.apps import apps

    for app_label in (
        "contactcenter",
        "privacy",
        "consent",
        "recordings",
        "audit",
        "training",
        "portal",
        "incidents",
        "backoffice",
    ):
        package = importlib.import_module(f"{app_label}.migrations")
        for module in sorted(m.name for m in pkgutil.iter_modules(package.__path__)):
            if module.endswith("_roles"):
                importlib.import_module(f"{app_label}.migrations.{module}").create_roles(apps, None)
