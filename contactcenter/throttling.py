"""The REST API's answer when a client has used up its request rate (DRF throttling)."""

import math

from django.utils.translation import gettext as _
from rest_framework.exceptions import Throttled
from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc, context):
    """DRF's handler, with a 429 that says in the user's language when to try again."""
    if isinstance(exc, Throttled):
        wait = math.ceil(exc.wait) if exc.wait is not None else None
        if wait is None:
            exc.detail = _("Too many requests. Please wait a moment and try again.")
        else:
            exc.detail = _("Too many requests. Please try again in %(seconds)d seconds.") % {
                "seconds": wait
            }
    return drf_exception_handler(exc, context)
